"""Reading one file: lines of keys, duplicate keys, and every kind of bad input.

Each bad input must give exactly one CRITICAL finding that says what is wrong and
where, and must never raise.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from foundation_helpers import MINIMAL_CONFIG, only_finding, write_config_dir

from hotconf.findings import Finding, Level
from hotconf.snapshot import load_snapshot
from hotconf.sources import (
    MAX_FILE_BYTES,
    Document,
    parse_document,
    read_document,
    read_source,
)


def parsed(name: str, text: str | bytes) -> Document:
    result = parse_document(name, text.encode() if isinstance(text, str) else text)
    assert isinstance(result, Document), f"expected a document, got the finding {result}"
    return result


def refused(name: str, text: str | bytes) -> Finding:
    result = parse_document(name, text.encode() if isinstance(text, str) else text)
    assert isinstance(result, Finding), f"expected one CRITICAL finding, got {result!r}"
    assert result.level is Level.CRITICAL
    return result


# --- lines -----------------------------------------------------------------------------


def test_yaml_keys_remember_their_lines() -> None:
    document = parsed("config.yaml", "# a comment\nbackend:\n  server_port: 8001\n\n"
                                     "  llm:\n    provider: ollama\nui:\n  theme: dark\n")

    assert document.tree == {"backend": {"server_port": 8001, "llm": {"provider": "ollama"}},
                             "ui": {"theme": "dark"}}
    assert document.lines[("backend",)] == 2
    assert document.lines[("backend", "server_port")] == 3
    assert document.lines[("backend", "llm", "provider")] == 6
    assert document.lines[("ui", "theme")] == 8
    assert document.source(("ui", "theme")) == "config.yaml:8"


def test_json_keys_remember_their_lines() -> None:
    document = parsed("settings.json", '{\n  "ui": {\n    "theme": "dark",\n'
                                       '    "font_size": 15\n  },\n'
                                       '  "chat": {"max_messages": 200}\n}\n')

    assert document.tree == {"ui": {"theme": "dark", "font_size": 15},
                             "chat": {"max_messages": 200}}
    assert document.source(("ui", "theme")) == "settings.json:3"
    assert document.source(("ui", "font_size")) == "settings.json:4"
    assert document.source(("chat", "max_messages")) == "settings.json:6"


def test_a_key_without_a_line_is_named_by_its_path() -> None:
    document = Document("settings.json", {"ui": {"theme": "dark"}})

    assert document.source(("ui", "theme")) == "settings.json:ui.theme"


def test_yaml_plain_values_keep_their_types() -> None:
    document = parsed("config.yaml", "a: 1\nb: 1.5\nc: true\nd: ~\ne: [x, 2]\nf: '8001'\n")

    assert document.tree == {"a": 1, "b": 1.5, "c": True, "d": None, "e": ["x", 2], "f": "8001"}
    assert isinstance(document.tree["c"], bool)


def test_yaml_merge_key_fills_in_what_the_mapping_does_not_set() -> None:
    document = parsed("config.yaml", "base: &base\n  host: a\n  port: 1\n"
                                     "other:\n  <<: *base\n  port: 2\n")

    assert document.tree["other"] == {"host": "a", "port": 2}
    assert document.duplicates == [], "overriding a merged key is not a duplicate"


def test_yaml_merge_key_rules() -> None:
    document = parsed("config.yaml", "a: &a {host: a, port: 1}\nb: &b {host: b, db: 2}\n"
                                     "own_first:\n  port: 9\n  <<: *a\n"
                                     "several:\n  <<: [*a, *b]\n")

    assert document.tree["own_first"] == {"port": 9, "host": "a"}
    assert document.tree["several"] == {"host": "a", "port": 1, "db": 2}


def test_yaml_merge_of_a_scalar_is_one_critical() -> None:
    finding = refused("config.yaml", "a: 1\nb:\n  <<: 5\n")

    assert "merge" in finding.message


# --- duplicate keys --------------------------------------------------------------------


def test_yaml_duplicate_key_is_a_warning_naming_both_lines_and_last_wins() -> None:
    document = parsed("config.yaml", "ui:\n  theme: dark\n  font_size: 12\n  theme: light\n")

    assert document.tree["ui"]["theme"] == "light"
    [duplicate] = document.duplicates
    assert duplicate.level is Level.WARNING
    assert duplicate.category == "syntax"
    assert duplicate.path == "ui.theme"
    assert duplicate.details["lines"] == [2, 4]
    assert duplicate.source == "config.yaml:4"
    assert "lines 2 and 4" in duplicate.message


def test_yaml_duplicate_section_is_a_warning() -> None:
    document = parsed("config.yaml", "ui:\n  theme: dark\nchat: {}\nui:\n  font_size: 12\n")

    assert document.tree["ui"] == {"font_size": 12}
    [duplicate] = document.duplicates
    assert duplicate.path == "ui"
    assert duplicate.details["lines"] == [1, 4]


def test_json_duplicate_key_is_a_warning_and_last_wins() -> None:
    document = parsed("settings.json", '{"ui": {\n "theme": "dark",\n "theme": "light"\n}}')

    assert document.tree["ui"]["theme"] == "light"
    [duplicate] = document.duplicates
    assert duplicate.level is Level.WARNING
    assert duplicate.path == "ui.theme"
    assert duplicate.details["lines"] == [2, 3]
    assert duplicate.source == "settings.json:3"


def test_same_key_in_different_mappings_is_not_a_duplicate() -> None:
    yaml_document = parsed("config.yaml", "a:\n  port: 1\nb:\n  port: 2\n")
    json_document = parsed("settings.json", '{"a": {"port": 1}, "b": {"port": 2}}')

    assert yaml_document.duplicates == []
    assert json_document.duplicates == []


def test_duplicate_keys_reach_the_report(tmp_path: Path) -> None:
    write_config_dir(tmp_path, MINIMAL_CONFIG + "ui:\n  theme: dark\n",
                     '{"chat": {"max_messages": 20, "max_messages": 30}}')

    report = load_snapshot(tmp_path, {}).report

    duplicates = [(finding.path, finding.source) for finding in report
                  if finding.category == "syntax"]
    assert duplicates == [("ui", "config.yaml:13"), ("chat.max_messages", "settings.json:1")]
    assert not report.critical


# --- bad input: each is one CRITICAL finding -------------------------------------------

ALIAS_BOMB = (
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    + "".join(f"{this}: &{this} [{', '.join([f'*{prev}'] * 9)}]\n"
              for prev, this in zip("abcdefgh", "bcdefghi", strict=True))
)

MAPPING_ALIAS_BOMB = (
    "m0: &m0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}\n"
    + "".join(f"m{level}: &m{level} {{{', '.join(f'k{k}: *m{level - 1}' for k in range(10))}}}\n"
              for level in range(1, 10))
)


@pytest.mark.parametrize(("name", "content", "category", "words", "line", "column"), [
    pytest.param("config.yaml", "backend:\n  server_port: [1,\n ui: x\n", "syntax",
                 ["not valid YAML"], 4, 1, id="unparsable-yaml"),
    pytest.param("config.yaml", "backend:\n  server_port: 1\n   timeout: 2\n", "syntax",
                 ["not valid YAML"], 3, 11, id="unparsable-yaml-indent"),
    pytest.param("config.yaml", "backend:\n\tserver_port: 1\n", "syntax",
                 ["not valid YAML"], 2, 1, id="yaml-tab-indent"),
    pytest.param("settings.json", '{\n  "ui": {\n    "theme": \n  }\n}\n', "syntax",
                 ["not valid JSON"], 4, 3, id="unparsable-json"),
    pytest.param("settings.json", '{"ui": {"theme": "dark",}}', "syntax",
                 ["not valid JSON"], 1, 25, id="json-trailing-comma"),
    pytest.param("config.yaml", "- backend\n- ui\n", "structure",
                 ["top level", "list", "mapping"], 1, None, id="yaml-top-level-list"),
    pytest.param("config.yaml", "just a sentence\n", "structure",
                 ["top level", "str", "mapping"], 1, None, id="yaml-top-level-scalar"),
    pytest.param("settings.json", '["ui"]', "structure",
                 ["top level", "list", "mapping"], 1, None, id="json-top-level-list"),
    pytest.param("settings.json", "42", "structure",
                 ["top level", "int", "mapping"], 1, None, id="json-top-level-number"),
    pytest.param("config.yaml", "", "structure", ["empty"], 1, None, id="yaml-empty"),
    pytest.param("config.yaml", "# only a comment\n\n", "structure", ["empty"], 1, None,
                 id="yaml-only-comments"),
    pytest.param("settings.json", "", "structure", ["empty"], 1, None, id="json-empty"),
    pytest.param("settings.json", "  \n\n", "structure", ["empty"], 1, None,
                 id="json-whitespace-only"),
    pytest.param("config.yaml", b"ui:\n  theme: caf\xe9\n", "syntax",
                 ["not UTF-8", "0xe9"], 2, 13, id="yaml-latin-1"),
    pytest.param("settings.json", b'{"ui": {"theme": "\xff"}}', "syntax",
                 ["not UTF-8", "0xff"], 1, 19, id="json-not-utf8"),
    pytest.param("config.yaml", ALIAS_BOMB, "syntax", ["expands to more than"], None, None,
                 id="yaml-alias-bomb"),
    pytest.param("config.yaml", MAPPING_ALIAS_BOMB, "syntax", ["expands to more than"], None,
                 None, id="yaml-mapping-alias-bomb"),
    pytest.param("config.yaml", "a: &a [1, *a]\n", "syntax", ["recursive alias"], 1, None,
                 id="yaml-recursive-sequence-alias"),
    pytest.param("config.yaml", "a: &a\n  b: *a\n", "syntax", ["recursive alias"], 2, None,
                 id="yaml-recursive-mapping-alias"),
    pytest.param("config.yaml", "a: &a\n  <<: *a\n", "syntax", ["recursive alias"], 2, None,
                 id="yaml-recursive-merge"),
    pytest.param("config.yaml", "a: *nowhere\n", "syntax", ["names no anchor"], 1, None,
                 id="yaml-unknown-alias"),
    pytest.param("config.yaml", "a: 2001-13-45\n", "syntax", ["2001-13-45", "line 1"], 1,
                 None, id="yaml-impossible-date"),
    pytest.param("config.yaml", "a: !!int five\n", "syntax", ["five"], 1, None,
                 id="yaml-bad-explicit-int"),
    pytest.param("config.yaml", "a: !!python/name:os.system\n", "syntax",
                 ["python"], 1, None, id="yaml-python-tag"),
    pytest.param("config.yaml", "a: 1\n---\nb: 2\n", "syntax", ["more than one", "---"], 2,
                 None, id="yaml-two-documents"),
    pytest.param("config.yaml", "? [a, b]\n: 1\n", "syntax", ["key", "plain names"], 1, None,
                 id="yaml-list-as-key"),
    pytest.param("config.yaml", "a: " + "[" * 200 + "]" * 200 + "\n", "syntax",
                 ["nest"], 1, None, id="yaml-too-deep"),
    pytest.param("settings.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "syntax",
                 ["nests too deeply"], None, None, id="json-too-deep"),
])
def test_bad_input_is_one_critical_finding(name: str, content: str | bytes, category: str,
                                           words: list[str], line: int | None,
                                           column: int | None) -> None:
    finding = refused(name, content)

    shown = str(finding)
    assert finding.category == category
    assert shown.startswith(name), shown
    for word in words:
        assert word in shown, f"{word!r} missing from: {shown}"
    if line is not None:
        assert finding.details.get("line") == line, finding
        assert finding.source == f"{name}:{line}"
    if column is not None:
        assert finding.details.get("column") == column, finding
        assert f"column {column}" in finding.message


def test_file_over_one_mebibyte_is_refused_without_parsing() -> None:
    finding = refused("config.yaml", b"a: 1\n" + b"#" * MAX_FILE_BYTES)

    assert finding.category == "structure"
    assert str(MAX_FILE_BYTES) in finding.message
    assert finding.source == "config.yaml"


def test_file_of_exactly_one_mebibyte_is_read() -> None:
    content = b"a: 1\n"
    document = parsed("config.yaml", content + b"#" * (MAX_FILE_BYTES - len(content)))

    assert document.tree == {"a": 1}


def test_python_tags_never_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    content = (f"a: !!python/object/apply:os.system ['touch {marker}']\n"
               f"b: !!python/object/apply:subprocess.call [[touch, {marker}]]\n")

    parse_document("config.yaml", content.encode())

    assert not marker.exists()


def test_alias_used_a_few_times_is_fine() -> None:
    document = parsed("config.yaml", "hosts: &hosts [a, b]\nx: *hosts\ny: *hosts\n")

    assert document.tree == {"hosts": ["a", "b"], "x": ["a", "b"], "y": ["a", "b"]}


# --- bad input on disk: read_source and load_snapshot ----------------------------------


def test_missing_optional_file_is_nothing(tmp_path: Path) -> None:
    assert read_source(tmp_path / "settings.json", required=False) is None
    assert read_document(tmp_path / "settings.json", required=False) is None


def test_missing_required_file_is_one_critical(tmp_path: Path) -> None:
    snapshot = load_snapshot(tmp_path, {})

    finding = only_finding(snapshot)
    assert finding.level is Level.CRITICAL
    assert str(tmp_path / "config.yaml") in finding.message
    assert "does not exist" in finding.message
    assert "--config-dir" in finding.message


def test_directory_named_config_yaml_is_one_critical(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").mkdir()

    finding = only_finding(load_snapshot(tmp_path, {}))

    assert finding.level is Level.CRITICAL
    assert "is a directory" in finding.message


def test_unreadable_file_is_one_critical(tmp_path: Path) -> None:
    # chmod 000 does not stop root; a symlink to itself fails for everyone (ELOOP).
    (tmp_path / "config.yaml").symlink_to("config.yaml")

    finding = only_finding(load_snapshot(tmp_path, {}))

    assert finding.level is Level.CRITICAL
    assert "cannot be read" in finding.message
    assert os.strerror(errno.ELOOP) in finding.message


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_special_file_is_one_critical_and_no_hang(tmp_path: Path, kind: str) -> None:
    # Opening a FIFO that no one writes to would block forever.
    if kind == "fifo":
        os.mkfifo(tmp_path / "config.yaml")
    else:
        (tmp_path / "config.yaml").symlink_to("/dev/zero")

    finding = only_finding(load_snapshot(tmp_path, {}))

    assert finding.level is Level.CRITICAL
    assert "is not a regular file" in finding.message


def test_unreadable_settings_json_is_one_critical_and_the_base_still_counts(
        tmp_path: Path) -> None:
    write_config_dir(tmp_path)
    (tmp_path / "settings.json").symlink_to("settings.json")

    snapshot = load_snapshot(tmp_path, {})

    finding = only_finding(snapshot)
    assert finding.level is Level.CRITICAL
    assert finding.source == "settings.json"
    assert snapshot.get("backend.server_port") == 8001


@pytest.mark.parametrize("name", ["config.yaml", "settings.json"])
def test_file_over_one_mebibyte_on_disk_is_one_critical(tmp_path: Path, name: str) -> None:
    write_config_dir(tmp_path)
    (tmp_path / name).write_bytes(b" " * (MAX_FILE_BYTES + 1))

    finding = only_finding(load_snapshot(tmp_path, {}))

    assert finding.level is Level.CRITICAL
    assert "over the limit" in finding.message
    assert finding.source == name


@pytest.mark.parametrize(("name", "content"), [
    ("config.yaml", "backend: [\n"),
    ("config.yaml", "[]\n"),
    ("config.yaml", b"\xfe\xff"),
    ("config.yaml", ALIAS_BOMB),
    ("settings.json", "{"),
    ("settings.json", "null"),
])
def test_bad_file_in_a_directory_is_exactly_one_finding(tmp_path: Path, name: str,
                                                        content: str | bytes) -> None:
    write_config_dir(tmp_path)
    target = tmp_path / name
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)

    finding = only_finding(load_snapshot(tmp_path, {}))

    assert finding.level is Level.CRITICAL
    assert finding.source is not None and finding.source.startswith(name)
