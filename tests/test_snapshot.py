"""Snapshots: one evaluation of a directory, its version, values, masks and explanations."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from foundation_helpers import (
    EXAMPLE_DIR,
    MINIMAL_CONFIG,
    describe,
    evaluate_texts,
    only_finding,
    write_config_dir,
)

from hotconf.findings import Finding, Level, Report
from hotconf.schema import LEAVES, section_names
from hotconf.secrets import MASK
from hotconf.snapshot import evaluate, load_snapshot
from hotconf.version import content_version

SECRET_CONFIG = MINIMAL_CONFIG.replace("  redis:\n", "  redis:\n    password: hunter2-redis\n")


# --- the example -----------------------------------------------------------------------


def test_example_config_validates_with_no_findings() -> None:
    snapshot = load_snapshot(EXAMPLE_DIR, {})

    assert list(snapshot.report) == [], describe(snapshot)


def test_example_config_exercises_every_section() -> None:
    snapshot = load_snapshot(EXAMPLE_DIR, {})

    from_files = {origin.name for origin in snapshot.layered.origins.values()
                  if origin.kind == "file"}
    assert from_files == {"config.yaml", "settings.json"}
    for section in section_names():
        assert any(section in document.tree for document in snapshot.documents.values()), section
    origins = [snapshot.layered.origins.get(tuple(leaf.path.split("."))) for leaf in LEAVES]
    set_in_files = [origin for origin in origins if origin is not None and origin.kind == "file"]
    assert len(set_in_files) >= 40


def test_example_config_with_environment_overrides_stays_clean_of_errors() -> None:
    environ = {"AUTOBOT_BACKEND_PORT": "9000", "AUTOBOT_REDIS_PASSWORD": "s3cret"}

    snapshot = load_snapshot(EXAMPLE_DIR, environ)

    assert snapshot.report.worst is Level.INFO
    assert snapshot.get("backend.server_port") == 9000


# --- version and files -----------------------------------------------------------------


def test_version_is_the_content_version_of_the_files_read(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_DIR, tmp_path, dirs_exist_ok=True)

    snapshot = load_snapshot(tmp_path, {})

    expected = {name: (tmp_path / name).read_bytes() for name in ("config.yaml",
                                                                   "settings.json")}
    assert snapshot.files == expected
    assert snapshot.version == content_version(expected)
    assert len(snapshot.version) == 12


def test_version_follows_the_files_not_the_environment(tmp_path: Path) -> None:
    write_config_dir(tmp_path)
    first = load_snapshot(tmp_path, {})

    with_env = load_snapshot(tmp_path, {"AUTOBOT_BACKEND_PORT": "9000"})
    write_config_dir(tmp_path, MINIMAL_CONFIG, '{"ui": {"theme": "dark"}}')
    with_settings = load_snapshot(tmp_path, {})

    assert with_env.version == first.version
    assert with_settings.version != first.version


def test_evaluate_and_load_snapshot_agree(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_DIR, tmp_path, dirs_exist_ok=True)
    environ = {"AUTOBOT_UI_THEME": "light"}

    loaded = load_snapshot(tmp_path, environ)
    evaluated = evaluate(loaded.files, tmp_path, environ)

    assert evaluated.version == loaded.version
    assert evaluated.values == loaded.values
    assert [finding.to_dict() for finding in evaluated.report] == \
        [finding.to_dict() for finding in loaded.report]


def test_evaluate_without_config_yaml_does_not_read_the_disk(tmp_path: Path) -> None:
    write_config_dir(tmp_path)

    snapshot = evaluate({}, tmp_path, {})

    finding = only_finding(snapshot)
    assert finding.level is Level.CRITICAL
    assert "does not exist" in finding.message
    assert snapshot.files == {}


def test_evaluate_ignores_settings_json_on_disk_when_not_given(tmp_path: Path) -> None:
    write_config_dir(tmp_path, MINIMAL_CONFIG, '{"ui": {"theme": "dark"}}')

    snapshot = evaluate({"config.yaml": MINIMAL_CONFIG.encode()}, tmp_path, {})

    assert snapshot.get("ui.theme") == "auto"


def test_settings_json_is_optional(tmp_path: Path) -> None:
    write_config_dir(tmp_path)

    snapshot = load_snapshot(tmp_path, {})

    assert list(snapshot.report) == []
    assert set(snapshot.files) == {"config.yaml"}


# --- values ----------------------------------------------------------------------------


def test_get_by_dotted_path() -> None:
    snapshot = evaluate_texts()

    assert snapshot.get("backend.server_port") == 8001
    assert snapshot.get("backend.llm.ollama.models") == ["llama3.2"]
    assert snapshot.get("memory.redis")["port"] == 6379
    assert snapshot.get("security.jwt_secret", "none") == "none"
    assert snapshot.get("backend.server_port.deeper", None) is None


def test_get_of_a_missing_path_names_it() -> None:
    with pytest.raises(KeyError, match=r"ui\.colour is not set"):
        evaluate_texts().get("ui.colour")


def test_masked_hides_secrets_and_values_keep_them() -> None:
    snapshot = evaluate_texts(SECRET_CONFIG, environ={"AUTOBOT_JWT_SECRET": "jwt-s3cret"})

    masked = snapshot.masked()

    assert masked["memory"]["redis"]["password"] == MASK
    assert masked["security"]["jwt_secret"] == MASK
    assert masked["backend"]["server_port"] == 8001
    assert "hunter2-redis" not in repr(masked)
    assert snapshot.values["memory"]["redis"]["password"] == "hunter2-redis"
    assert snapshot.get("security.jwt_secret") == "jwt-s3cret"


# --- explain ---------------------------------------------------------------------------


def test_explain_gives_value_source_and_shadowed_stack() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, '{\n "ui": {"theme": "dark"}\n}',
                              {"AUTOBOT_UI_THEME": "light"})

    [explanation] = snapshot.explain("ui.theme")

    assert explanation.to_dict() == {
        "path": "ui.theme", "set": True, "value": "light", "source": "AUTOBOT_UI_THEME",
        "shadowed": [{"value": "dark", "source": "settings.json:2"},
                     {"value": "auto", "source": "config.yaml:7"},
                     {"value": "auto", "source": "default"}],
    }


def test_explain_masks_a_secret_and_everything_it_shadows() -> None:
    snapshot = evaluate_texts(SECRET_CONFIG, environ={"AUTOBOT_REDIS_PASSWORD": "env-s3cret"})

    [explanation] = snapshot.explain("memory.redis.password")

    body = explanation.to_dict()
    assert body["value"] == MASK
    assert body["source"] == "AUTOBOT_REDIS_PASSWORD"
    assert body["shadowed"] == [{"value": MASK, "source": "config.yaml:5"}]
    assert "s3cret" not in repr(body) and "hunter2" not in repr(body)


def test_explain_of_a_mapping_lists_each_leaf_below_it() -> None:
    snapshot = evaluate_texts()

    explanations = snapshot.explain("memory.redis")

    paths = [item.path for item in explanations]
    assert paths == sorted(paths)
    assert {"memory.redis.port", "memory.redis.host", "memory.redis.db"} <= set(paths)
    assert all(not isinstance(item.value, dict) for item in explanations)
    port = next(item for item in explanations if item.path == "memory.redis.port")
    assert str(port.origin) == "config.yaml:5"


def test_explain_of_a_leaf_nothing_sets() -> None:
    [explanation] = evaluate_texts().explain("security.jwt_secret")

    assert explanation.is_set is False
    assert explanation.to_dict()["source"] is None
    assert explanation.value is None


# --- reports ---------------------------------------------------------------------------


def test_report_summary_status_and_worst() -> None:
    report = Report([Finding(Level.INFO, "override", "i"), Finding(Level.WARNING, "unknown", "w"),
                     Finding(Level.WARNING, "path", "w2"), Finding(Level.ERROR, "type", "e")])

    assert report.summary() == {"total": 4, "critical": 0, "errors": 1, "warnings": 2, "info": 1}
    assert report.worst is Level.ERROR
    assert report.to_dict()["status"] == "healthy"
    report.extend([Finding(Level.CRITICAL, "syntax", "c")])
    assert report.to_dict()["status"] == "unhealthy"
    assert report.critical
    assert Report().worst is None


# --- nothing crashes -------------------------------------------------------------------


def test_mangled_example_never_raises() -> None:
    """Bytes flipped, cut and repeated at random: always findings, never an exception."""
    original = (EXAMPLE_DIR / "config.yaml").read_bytes()
    settings = (EXAMPLE_DIR / "settings.json").read_bytes()
    chooser = random.Random(20261203)
    alphabet = b" \t\n:-[]{}&*!|>'\"#%@`,?\xff\x00"

    for _ in range(300):
        data = bytearray(original if chooser.random() < 0.7 else settings)
        for _ in range(chooser.randint(1, 6)):
            position = chooser.randrange(len(data))
            action = chooser.random()
            if action < 0.5:
                data[position] = chooser.choice(alphabet)
            elif action < 0.75:
                del data[position:position + chooser.randint(1, 40)]
            else:
                data[position:position] = data[position:position + chooser.randint(1, 80)]
        name = "config.yaml" if chooser.random() < 0.5 else "settings.json"
        files = {"config.yaml": original, name: bytes(data)}

        snapshot = evaluate(files, Path("/nonexistent/hotconf-tests"), {})

        assert all(isinstance(finding, Finding) for finding in snapshot.report)
