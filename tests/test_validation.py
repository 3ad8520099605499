"""Validation: every check, its level and category, and where each finding points."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from foundation_helpers import (
    MINIMAL_CONFIG,
    describe,
    evaluate_texts,
    findings_of,
    only_finding,
)

from hotconf.findings import Finding, Level
from hotconf.schema import REQUIRED_SECTIONS
from hotconf.secrets import MASK
from hotconf.snapshot import Snapshot


def config_with(path: str, value: Any, base: str = MINIMAL_CONFIG) -> str:
    """MINIMAL_CONFIG with one dotted path set to ``value``."""
    tree = yaml.safe_load(base)
    node = tree
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return yaml.safe_dump(tree, sort_keys=False)


def evaluate_with(path: str, value: Any, config_dir: Path | None = None) -> Snapshot:
    return evaluate_texts(config_with(path, value), config_dir=config_dir)


def assert_points_at_config_line(snapshot: Snapshot, finding: Finding) -> None:
    expected = snapshot.documents["config.yaml"].source(tuple(finding.path.split(".")))
    assert expected.startswith("config.yaml:")
    assert finding.source == expected


# --- required sections -----------------------------------------------------------------


@pytest.mark.parametrize("section", REQUIRED_SECTIONS)
def test_missing_required_section_is_critical(section: str) -> None:
    tree = yaml.safe_load(MINIMAL_CONFIG)
    del tree[section]

    snapshot = evaluate_texts(yaml.safe_dump(tree))

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.path) == (Level.CRITICAL, "structure",
                                                               section)
    assert f"'{section}:'" in finding.message
    assert finding.source == "config.yaml"
    assert snapshot.report.critical


def test_every_missing_required_section_is_reported() -> None:
    snapshot = evaluate_texts("security: {}\n")

    critical = [finding.path for finding in snapshot.report.at(Level.CRITICAL)]
    assert critical == list(REQUIRED_SECTIONS)


@pytest.mark.parametrize(("text", "kind"), [
    ("ui: dark\n", "a string"),
    ("ui: [dark]\n", "a list"),
    ("ui:\n", "an empty value"),
])
def test_required_section_that_is_not_a_mapping_is_critical(text: str, kind: str) -> None:
    config = MINIMAL_CONFIG.replace("ui:\n  theme: auto\n  font_size: 14\n", text)

    snapshot = evaluate_texts(config)

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.path) == (Level.CRITICAL, "structure", "ui")
    assert f"must be a mapping, not {kind}" in finding.message
    assert finding.source == "config.yaml:6"


def test_required_section_from_settings_json_counts() -> None:
    config = MINIMAL_CONFIG.replace("chat:\n  max_messages: 100\n", "")

    snapshot = evaluate_texts(config, '{"chat": {"max_messages": 50}}')

    assert list(snapshot.report) == [], describe(snapshot)


def test_required_section_turned_into_a_scalar_by_settings_json_is_critical() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, '{"chat": "none"}')

    finding = only_finding(snapshot)
    assert (finding.level, finding.path, finding.source) == (Level.CRITICAL, "chat",
                                                             "settings.json:1")


# --- types -----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("backend.server_port", "70000", "an integer"),
    ("backend.server_port", True, "an integer"),
    ("backend.server_port", 8001.5, "an integer"),
    ("backend.timeout", "sixty", "an integer"),
    ("chat.max_messages", "5", "an integer"),
    ("backend.llm.temperature", "3", "a number"),
    ("backend.streaming", "yes", "true or false"),
    ("backend.streaming", 1, "true or false"),
    ("backend.cors_origins", "http://localhost:5173", "a list of URLs"),
    ("backend.llm.ollama.models", ["llama3.2", 7], "a list of strings"),
    ("backend.llm.ollama.host", 11434, "a string"),
    ("ui.theme", ["dark"], "a string"),
    ("logging.file", {"path": "x"}, "a string"),
])
def test_wrong_type_is_one_error_and_its_range_is_not_checked(path: str, value: Any,
                                                              expected: str) -> None:
    snapshot = evaluate_with(path, value)

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.path) == (Level.ERROR, "type", path)
    assert f"must be {expected}" in finding.message
    assert finding.value == value
    assert_points_at_config_line(snapshot, finding)


def test_integer_is_accepted_for_a_number() -> None:
    snapshot = evaluate_with("backend.llm.temperature", 1)

    assert list(snapshot.report) == [], describe(snapshot)


@pytest.mark.parametrize(("text", "expected"), [
    ("security: 5\n", "must be a mapping, not an integer"),
    ("security:\n  allowed_hosts: [a]\n  jwt_secret: [x]\n", "must be a string"),
    ("prompts: [a, b]\n", "must be a mapping, not a list"),
])
def test_optional_parts_of_the_wrong_type_are_errors(text: str, expected: str) -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG + text)

    finding = only_finding(snapshot)
    assert (finding.level, finding.category) == (Level.ERROR, "type")
    assert expected in finding.message


def test_secret_of_the_wrong_type_is_masked_in_the_finding() -> None:
    snapshot = evaluate_with("memory.redis.password", 12345678)

    finding = only_finding(snapshot)
    assert finding.category == "type"
    assert finding.value == MASK
    assert "12345678" not in finding.message
    assert "12345678" not in str(finding.to_dict())


# --- ranges and choices ----------------------------------------------------------------


@pytest.mark.parametrize(("path", "value", "words"), [
    ("backend.server_port", 70000, "70000 is above 65535"),
    ("backend.server_port", 0, "0 is below 1"),
    ("backend.timeout", 301, "301 is above 300"),
    ("backend.timeout", 0, "0 is below 1"),
    ("memory.redis.port", 65536, "65536 is above 65535"),
    ("chat.max_messages", 5, "5 is below 10"),
    ("chat.max_messages", 10_001, "10001 is above 10000"),
    ("security.session_timeout_minutes", 4, "4 is below 5"),
    ("security.session_timeout_minutes", 1441, "1441 is above 1440"),
    ("backend.llm.temperature", 2.5, "2.5 is above 2"),
    ("voice_interface.volume", -0.1, "-0.1 is below 0"),
    ("memory.redis.db", 16, "16 is above 15"),
])
def test_value_out_of_range_is_an_error(path: str, value: Any, words: str) -> None:
    snapshot = evaluate_with(path, value)

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.path) == (Level.ERROR, "range", path)
    assert words in finding.message
    assert "allowed" in finding.message
    assert finding.value == value
    assert_points_at_config_line(snapshot, finding)


@pytest.mark.parametrize(("path", "value"), [
    ("backend.server_port", 1), ("backend.server_port", 65535), ("backend.timeout", 300),
    ("chat.max_messages", 10), ("chat.max_messages", 10_000),
    ("security.session_timeout_minutes", 5), ("security.session_timeout_minutes", 1440),
    ("backend.llm.temperature", 0), ("backend.llm.temperature", 2.0),
])
def test_range_bounds_are_inclusive(path: str, value: Any) -> None:
    snapshot = evaluate_with(path, value)

    assert list(snapshot.report) == [], describe(snapshot)


@pytest.mark.parametrize(("path", "value", "choices"), [
    ("ui.theme", "purple", "light, dark, auto"),
    ("backend.llm.provider", "gpt", "ollama, openai, anthropic"),
    ("logging.level", "info", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
])
def test_value_outside_its_choices_is_an_error(path: str, value: str, choices: str) -> None:
    finding = only_finding(evaluate_with(path, value))

    assert (finding.level, finding.category, finding.path) == (Level.ERROR, "range", path)
    assert f"must be one of {choices}" in finding.message


# --- URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:11434", "https://api.openai.com/v1", "http://[::1]:11434/",
    "ws://localhost:8080/socket", "wss://example.org", "redis://redis.local:6379/0",
    "http://user@host.example",
])
def test_good_urls_pass(url: str) -> None:
    snapshot = evaluate_with("backend.llm.ollama.host", url)

    assert list(snapshot.report) == [], describe(snapshot)


@pytest.mark.parametrize(("url", "words"), [
    ("localhost:11434", "use one of http://"),
    ("127.0.0.1:11434", "use one of http://"),
    ("ftp://files.example", "'ftp'"),
    ("http://", "has no host"),
    ("http:///path", "has no host"),
    ("http://host:99999", "not a valid URL"),
    ("http://host:0", "port 0"),
    ("http://[::1", "not a valid URL"),
    ("", "no scheme"),
])
def test_bad_urls_are_errors(url: str, words: str) -> None:
    snapshot = evaluate_with("backend.llm.ollama.host", url)

    finding = only_finding(snapshot)
    assert (finding.level, finding.category) == (Level.ERROR, "url")
    assert words in finding.message
    assert_points_at_config_line(snapshot, finding)


def test_one_bad_url_in_a_list_is_an_error() -> None:
    snapshot = evaluate_with("backend.cors_origins", ["http://a.example", "b.example:3000"])

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.path) == (Level.ERROR, "url",
                                                               "backend.cors_origins")
    assert "'b.example:3000'" in finding.message


# --- file paths ------------------------------------------------------------------------


def test_path_with_a_missing_parent_directory_is_a_warning(tmp_path: Path) -> None:
    snapshot = evaluate_with("chat.history_file", "nodir/history.json", tmp_path)

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.path) == (Level.WARNING, "path",
                                                               "chat.history_file")
    assert f"directory {tmp_path / 'nodir'} does not exist" in finding.message
    assert f"mkdir -p {tmp_path / 'nodir'}" in finding.message
    assert finding.details["resolved"] == str(tmp_path / "nodir" / "history.json")
    assert_points_at_config_line(snapshot, finding)


def test_relative_paths_resolve_against_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()

    snapshot = evaluate_with("logging.file", "logs/autobot.log", tmp_path)

    assert list(snapshot.report) == [], describe(snapshot)


def test_absolute_path_is_checked_as_given(tmp_path: Path) -> None:
    good = evaluate_with("logging.file", str(tmp_path / "autobot.log"), Path("/nonexistent"))
    bad = evaluate_with("logging.file", str(tmp_path / "gone" / "autobot.log"), tmp_path)

    assert list(good.report) == [], describe(good)
    assert only_finding(bad).details["resolved"] == str(tmp_path / "gone" / "autobot.log")


def test_path_whose_parent_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("a file, not a directory")

    finding = only_finding(evaluate_with("logging.file", "logs/autobot.log", tmp_path))

    assert (finding.level, finding.category) == (Level.ERROR, "path")
    assert f"{tmp_path / 'logs'} is not a directory" in finding.message


def test_directory_setting_that_names_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "chromadb").write_text("a file")

    finding = only_finding(evaluate_with("memory.vector_store.path", "chromadb", tmp_path))

    assert (finding.level, finding.category) == (Level.ERROR, "path")
    assert "is not a directory" in finding.message


def test_existing_directory_setting_passes(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()

    snapshot = evaluate_with("knowledge_base.path", "kb", tmp_path)

    assert list(snapshot.report) == [], describe(snapshot)


def test_default_paths_are_not_checked() -> None:
    # The service creates its default directories itself.
    snapshot = evaluate_texts(config_dir=Path("/nonexistent/hotconf-tests"))

    assert findings_of(snapshot, category="path") == []


def test_path_from_the_environment_is_checked(tmp_path: Path) -> None:
    snapshot = evaluate_texts(environ={"AUTOBOT_LOG_FILE": "missing/x.log"}, config_dir=tmp_path)

    finding = only_finding(snapshot)
    assert (finding.category, finding.source) == ("path", "AUTOBOT_LOG_FILE")


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory holding ``existing.log`` that no one, root included, can write to."""
    target = tmp_path / "readonly"
    target.mkdir()
    if os.geteuid() != 0:
        (target / "existing.log").write_text("")
        (target / "existing.log").chmod(0o444)
        target.chmod(0o555)
        yield target
        target.chmod(0o755)
        return

    # Permission bits do not stop root; a read-only filesystem does.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755",
                              "hotconf-test", str(target)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"running as root without the right to mount a read-only tmpfs: "
                    f"{mounted.stderr.decode().strip()}")
    try:
        (target / "existing.log").write_text("")
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_path_in_a_directory_that_is_not_writable_is_an_error(
        read_only_directory: Path) -> None:
    snapshot = evaluate_with("logging.file", str(read_only_directory / "new.log"))

    finding = only_finding(snapshot)
    assert (finding.level, finding.category) == (Level.ERROR, "path")
    assert f"{read_only_directory} is not writable" in finding.message


def test_existing_file_that_is_not_writable_is_an_error(read_only_directory: Path) -> None:
    snapshot = evaluate_with("logging.file", str(read_only_directory / "existing.log"))

    finding = only_finding(snapshot)
    assert (finding.level, finding.category) == (Level.ERROR, "path")
    assert "not writable" in finding.message


# --- unknown keys ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "path", "suggestion"), [
    ("backnd:\n  server_port: 1\n", "backnd", "backend"),
    ("memory:\n  redis:\n    pasword: x\n", "memory.redis.pasword", "memory.redis.password"),
    ("ui:\n  thme: dark\n", "ui.thme", "ui.theme"),
    ("backend:\n  llm:\n    temprature: 0.5\n", "backend.llm.temprature",
     "backend.llm.temperature"),
])
def test_unknown_key_is_a_warning_with_a_suggestion(text: str, path: str,
                                                    suggestion: str) -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG + text)

    [finding] = findings_of(snapshot, category="unknown")
    assert (finding.level, finding.path) == (Level.WARNING, path)
    assert f"did you mean '{suggestion}'?" in finding.message
    assert finding.details["suggestion"] == suggestion.rsplit(".", 1)[-1]
    assert finding.source is not None and finding.source.startswith("config.yaml:")
    assert not snapshot.report.critical


def test_unknown_key_far_from_any_lists_the_known_keys() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG + "voice_interface:\n  zzz: 1\n")

    finding = only_finding(snapshot)
    assert finding.category == "unknown"
    assert "did you mean" not in finding.message
    assert "known keys here: enabled, speech_rate, voice, volume" in finding.message


def test_unknown_key_in_settings_json_points_at_settings_json() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, '{\n "ui": {\n  "colour": "red"\n }\n}')

    finding = only_finding(snapshot)
    assert (finding.category, finding.source) == ("unknown", "settings.json:3")


def test_prompts_take_any_keys() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG + "prompts:\n  anything: goes\n  nested: {a: 1}\n")

    assert list(snapshot.report) == [], describe(snapshot)


# --- conflicts between the sources -----------------------------------------------------

CONFIG_WITH_LISTS = MINIMAL_CONFIG.replace(
    "backend:\n", "backend:\n  cors_origins:\n    - http://a.example\n    - http://b.example\n")


@pytest.mark.parametrize("replacement", [
    ["http://b.example", "http://a.example"],
    ["http://a.example", "http://c.example"],
    ["http://a.example"],
    ["http://a.example", "http://b.example", "http://c.example"],
    [],
])
def test_settings_json_replacing_a_list_with_other_content_is_a_warning(
        replacement: list[str]) -> None:
    settings = '{\n "backend": {\n  "cors_origins": ' + json.dumps(replacement) + "\n }\n}"

    snapshot = evaluate_texts(CONFIG_WITH_LISTS, settings)

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.path) == (Level.WARNING, "conflict",
                                                               "backend.cors_origins")
    assert f"2 items -> {len(replacement)} items" in finding.message
    assert finding.details["base"] == ["http://a.example", "http://b.example"]
    assert finding.details["config.yaml"] == "config.yaml:2"
    assert finding.details["settings.json"] == "settings.json:3"
    assert finding.source == "settings.json:3"
    assert snapshot.get("backend.cors_origins") == replacement


def test_settings_json_repeating_the_base_value_is_info() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, '{\n "ui": {\n  "font_size": 14\n }\n}')

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.path) == (Level.INFO, "override",
                                                               "ui.font_size")
    assert "repeats" in finding.message
    assert finding.details == {"config.yaml": "config.yaml:8", "settings.json": "settings.json:3"}


def test_settings_json_repeating_the_same_list_is_info_not_a_conflict() -> None:
    settings = '{"backend": {"cors_origins": ["http://a.example", "http://b.example"]}}'

    finding = only_finding(evaluate_texts(CONFIG_WITH_LISTS, settings))

    assert (finding.level, finding.category) == (Level.INFO, "override")


def test_settings_json_changing_a_value_is_not_reported() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, '{"ui": {"font_size": 16}}')

    assert list(snapshot.report) == [], describe(snapshot)


def test_equal_looking_values_of_another_type_are_not_a_repeat() -> None:
    config = MINIMAL_CONFIG.replace("backend:\n", "backend:\n  llm:\n    temperature: 1\n")

    snapshot = evaluate_texts(config, '{"backend": {"llm": {"temperature": 1.0}}}')

    assert findings_of(snapshot, category="override") == []


def test_prompts_in_both_files_are_not_conflicts() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG + "prompts:\n  a: same\n",
                              '{"prompts": {"a": "same"}}')

    assert list(snapshot.report) == [], describe(snapshot)


def test_repeated_secret_is_masked_in_the_finding() -> None:
    config = MINIMAL_CONFIG.replace("  redis:\n", "  redis:\n    password: hunter2-redis\n")

    finding = only_finding(evaluate_texts(config,
                                          '{"memory": {"redis": {"password": "hunter2-redis"}}}'))

    assert finding.value == MASK
    assert "hunter2-redis" not in str(finding.to_dict())


# --- the finding itself ----------------------------------------------------------------


def test_finding_carries_every_field_of_the_api() -> None:
    finding = only_finding(evaluate_with("backend.server_port", 70000))

    body = finding.to_dict()
    assert list(body) == ["level", "category", "message", "path", "value", "details", "source"]
    assert body["level"] == "error"
    assert str(finding).startswith(f"{finding.source}: backend.server_port: ")
