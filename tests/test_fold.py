"""Folding settings.json into config.yaml: comments, order and meaning all kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotconf.errors import ConfigRejected
from hotconf.fold import fold_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"


def comment_lines(text: bytes) -> list[str]:
    return [line.strip() for line in text.decode().splitlines() if "#" in line]


def top_keys(text: bytes) -> list[str]:
    return [line.split(":")[0] for line in text.decode().splitlines()
            if line and not line.startswith((" ", "#", "-"))]


def read_back(text: bytes) -> Any:
    return yaml.safe_load(text)


def test_example_keeps_every_comment_and_the_key_order() -> None:
    base = (EXAMPLE / "config.yaml").read_bytes()
    settings = json.loads((EXAMPLE / "settings.json").read_bytes())

    fold = fold_settings(base, settings)

    assert comment_lines(fold.text) == comment_lines(base)
    assert top_keys(fold.text) == top_keys(base)
    tree = read_back(fold.text)
    assert tree["ui"]["theme"] == "dark" and tree["ui"]["font_size"] == 15
    assert tree["backend"]["llm"]["temperature"] == 0.5
    assert tree["chat"]["max_messages"] == 200
    assert sorted(change.path for change in fold.changes) == [
        "backend.llm.temperature", "chat.max_messages", "ui.font_size", "ui.theme"]
    # Only the four changed lines differ.
    changed = [pair for pair in zip(base.decode().splitlines(), fold.text.decode().splitlines(),
                                    strict=True) if pair[0] != pair[1]]
    assert len(changed) == 4


def test_never_in_base_sections_are_left_out_and_handed_back() -> None:
    base = (EXAMPLE / "config.yaml").read_bytes()
    settings = json.loads((EXAMPLE / "settings.json").read_bytes())

    fold = fold_settings(base, settings)

    assert "prompts" not in read_back(fold.text)
    assert fold.left_out == {"prompts": settings["prompts"]}


def test_an_added_key_lands_under_its_parent_in_schema_order() -> None:
    base = (EXAMPLE / "config.yaml").read_bytes()

    fold = fold_settings(base, {"backend": {"llm": {"openai": {"api_key": "sk-abc"}}}})

    lines = fold.text.decode().splitlines()
    index = lines.index("      base_url: https://api.openai.com/v1")
    assert lines[index + 1] == "      api_key: sk-abc"
    # The blank line that separated the backend section still precedes memory.
    assert lines[index + 2] == "" and lines[index + 3] == "memory:"
    assert [change.added for change in fold.changes] == [True]


def test_a_changed_value_keeps_its_comment_in_its_column() -> None:
    base = b"memory:\n  vector_store:\n    path: data/chromadb        # relative\n"

    fold = fold_settings(base, {"memory": {"vector_store": {"path": "data/other"}}})

    assert fold.text == b"memory:\n  vector_store:\n    path: data/other           # relative\n"


def test_floats_in_exponent_form_stay_floats() -> None:
    base = b"a:\n  small: 0.5\n  big: 1.5\n"

    fold = fold_settings(base, {"a": {"small": 1e-05, "big": [1e20], "new": 2e-7}})

    assert read_back(fold.text) == {"a": {"small": 1e-05, "big": [1e20], "new": 2e-7}}


def test_a_key_the_schema_orders_first_goes_before_its_siblings() -> None:
    base = b"ui:\n  language: en  # two letters\n  font_size: 14\n"

    fold = fold_settings(base, {"ui": {"theme": "dark"}})

    assert fold.text == b"ui:\n  theme: dark\n  language: en  # two letters\n  font_size: 14\n"


def test_a_new_section_is_appended_and_set_apart() -> None:
    base = b"ui:\n  theme: auto\n\nchat:\n  max_messages: 100\n"

    fold = fold_settings(base, {"voice_interface": {"enabled": True}})

    assert fold.text == (b"ui:\n  theme: auto\n\nchat:\n  max_messages: 100\n\n"
                         b"voice_interface:\n  enabled: true\n")


def test_a_new_section_between_others_is_set_apart_on_both_sides() -> None:
    base = b"ui:\n  theme: auto\n\n# about logging\nlogging:\n  level: INFO\n"

    fold = fold_settings(base, {"chat": {"max_messages": 200}})

    assert fold.text == (b"ui:\n  theme: auto\n\nchat:\n  max_messages: 200\n"
                         b"\n# about logging\nlogging:\n  level: INFO\n")


def test_a_new_last_section_is_set_apart_before_a_closing_comment() -> None:
    base = b"ui:\n  theme: auto\n\nchat:\n  max_messages: 100\n\n# end of file\n"

    fold = fold_settings(base, {"voice_interface": {"enabled": True}})

    assert fold.text == (b"ui:\n  theme: auto\n\nchat:\n  max_messages: 100\n\n"
                         b"voice_interface:\n  enabled: true\n\n# end of file\n")


def test_a_new_first_section_is_set_apart() -> None:
    base = b"# AutoBot\n\nui:\n  theme: auto\n"

    fold = fold_settings(base, {"backend": {"timeout": 30}})

    assert fold.text == b"# AutoBot\n\nbackend:\n  timeout: 30\n\nui:\n  theme: auto\n"


def test_lists_are_replaced_whole_and_mappings_merged() -> None:
    base = b"security:\n  allowed_hosts:\n  - localhost\n  - 127.0.0.1\n  jwt_secret: x\n"

    fold = fold_settings(base, {"security": {"allowed_hosts": ["example.org"]}})

    assert read_back(fold.text) == {"security": {"allowed_hosts": ["example.org"],
                                                 "jwt_secret": "x"}}
    # The file's own list style (dash at the key's indent) is kept.
    assert b"  allowed_hosts:\n  - example.org\n" in fold.text


def test_comment_after_a_replaced_list_stays_before_the_next_section() -> None:
    base = b"a:\n  hosts:\n    - one\n    - two\n\n# about b\nb:\n  y: 2\n"

    fold = fold_settings(base, {"a": {"hosts": ["three"]}})

    assert fold.text == b"a:\n  hosts:\n    - three\n\n# about b\nb:\n  y: 2\n"


def test_strings_that_look_like_other_types_stay_strings() -> None:
    base = b"ui:\n  language: en\n"

    fold = fold_settings(base, {"ui": {"language": "no", "code": "0777", "flag": "on"}})

    assert read_back(fold.text) == {"ui": {"language": "no", "code": "0777", "flag": "on"}}


def test_values_differing_only_in_type_are_changes() -> None:
    base = b"a:\n  n: 1\n  f: 1\n"

    fold = fold_settings(base, {"a": {"n": True, "f": 1.0}})

    assert read_back(fold.text) == {"a": {"n": True, "f": 1.0}}
    assert [change.path for change in fold.changes] == ["a.n", "a.f"]


def test_nothing_to_change_returns_the_same_bytes() -> None:
    base = b"ui:\n  theme:   dark   # odd spacing kept\n"

    fold = fold_settings(base, {"ui": {"theme": "dark"}, "prompts": {"x": "y"}})

    assert fold.text == base
    assert fold.changes == []
    assert fold.left_out == {"prompts": {"x": "y"}}


def test_an_empty_base_takes_the_settings() -> None:
    fold = fold_settings(b"", {"ui": {"theme": "dark"}})

    assert read_back(fold.text) == {"ui": {"theme": "dark"}}


def test_a_base_with_a_repeated_key_is_refused_with_its_line() -> None:
    base = b"ui:\n  theme: auto\n  theme: light\n"

    with pytest.raises(ConfigRejected) as caught:
        fold_settings(base, {"ui": {"font_size": 15}})

    assert "config.yaml:3" in str(caught.value)
    assert caught.value.findings[0].source == "config.yaml:3"


def test_an_alias_shared_with_a_changed_value_is_refused() -> None:
    base = b"a: &shared\n  x: 1\nb: *shared\n"

    with pytest.raises(ConfigRejected, match="would not read back"):
        fold_settings(base, {"a": {"x": 2}})


def test_a_base_that_does_not_parse_is_refused() -> None:
    with pytest.raises(ConfigRejected) as caught:
        fold_settings(b"ui: [unclosed\n", {"ui": {"theme": "dark"}})

    assert caught.value.findings[0].source is not None
    assert caught.value.findings[0].source.startswith("config.yaml")
