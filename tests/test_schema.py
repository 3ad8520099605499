"""The AutoBot schema: its table of leaves, defaults, sections and type checks."""

from __future__ import annotations

import pytest
import voluptuous as vol
from foundation_helpers import MINIMAL_CONFIG, describe, evaluate_texts

from hotconf.schema import (
    FREEFORM_SECTIONS,
    LEAVES,
    LEAVES_BY_PATH,
    REQUIRED_SECTIONS,
    Leaf,
    children_of,
    defaults_tree,
    leaf_type_validator,
    section_names,
    structure_schema,
)
from hotconf.secrets import is_secret_path
from hotconf.validation import value_problem


def test_schema_has_at_least_forty_leaves() -> None:
    assert len(LEAVES) >= 40
    assert len(LEAVES_BY_PATH) == len(LEAVES), "two leaves share a path"


def test_required_and_optional_sections() -> None:
    assert REQUIRED_SECTIONS == ("backend", "memory", "ui", "chat", "logging")
    sections = section_names()
    for optional in ("security", "knowledge_base", "developer", "voice_interface", "prompts"):
        assert optional in sections
    assert set(REQUIRED_SECTIONS) <= set(sections)


@pytest.mark.parametrize(("path", "minimum", "maximum"), [
    ("backend.server_port", 1, 65535),
    ("backend.timeout", 1, 300),
    ("memory.redis.port", 1, 65535),
    ("chat.max_messages", 10, 10_000),
    ("security.session_timeout_minutes", 5, 1440),
])
def test_ranges_named_by_the_issue(path: str, minimum: int, maximum: int) -> None:
    leaf = LEAVES_BY_PATH[path]

    assert (leaf.minimum, leaf.maximum) == (minimum, maximum)
    assert value_problem(leaf, minimum) is None
    assert value_problem(leaf, maximum) is None
    assert value_problem(leaf, minimum - 1) is not None
    assert value_problem(leaf, maximum + 1) is not None


def test_schema_has_url_path_and_secret_fields() -> None:
    kinds = {leaf.type for leaf in LEAVES}

    assert {"url", "url_list", "path", "bool", "int", "float", "list", "choice", "str"} <= kinds
    assert {leaf.path_kind for leaf in LEAVES if leaf.type == "path"} == {"file", "dir"}
    secrets = {leaf.path for leaf in LEAVES if is_secret_path(leaf.path)}
    assert {"memory.redis.password", "backend.api_key", "security.jwt_secret",
            "backend.llm.openai.api_key"} <= secrets


@pytest.mark.parametrize("leaf", [leaf for leaf in LEAVES if leaf.has_default],
                         ids=lambda leaf: leaf.path)
def test_every_default_passes_its_own_checks(leaf: Leaf) -> None:
    leaf_type_validator(leaf)(leaf.default)
    assert value_problem(leaf, leaf.default) is None
    if leaf.choices:
        assert leaf.default in leaf.choices


def test_secrets_have_no_default() -> None:
    # A default secret would be the same on every machine of every user.
    assert [leaf.path for leaf in LEAVES if is_secret_path(leaf.path) and leaf.has_default] \
        == []


def test_defaults_tree_nests_every_leaf_with_a_default() -> None:
    tree = defaults_tree()

    assert tree["backend"]["server_port"] == 8001
    assert tree["backend"]["llm"]["ollama"]["host"] == "http://127.0.0.1:11434"
    assert "password" not in tree["memory"]["redis"]
    for leaf in LEAVES:
        node = tree
        *parents, last = leaf.path.split(".")
        for part in parents:
            node = node[part]
        assert (last in node) is leaf.has_default, leaf.path


def test_defaults_tree_is_a_fresh_copy_each_time() -> None:
    first = defaults_tree()
    first["backend"]["cors_origins"].append("http://mutated.example")

    assert defaults_tree()["backend"]["cors_origins"] == ["http://localhost:5173"]


def test_minimal_config_on_the_defaults_has_no_findings() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG)

    assert list(snapshot.report) == [], describe(snapshot)


def test_structure_schema_accepts_the_defaults() -> None:
    structure_schema()(defaults_tree())


def test_structure_schema_refuses_unknown_keys() -> None:
    with pytest.raises(vol.MultipleInvalid) as raised:
        structure_schema()({"backend": {"server_prot": 1}})

    assert raised.value.errors[0].path == ["backend", "server_prot"]


@pytest.mark.parametrize(("path", "good", "bad"), [
    ("backend.server_port", 8001, True),
    ("backend.server_port", 8001, 8001.0),
    ("backend.server_port", 8001, "8001"),
    ("backend.llm.temperature", 1, "0.5"),
    ("backend.llm.temperature", 0.5, False),
    ("backend.streaming", False, "false"),
    ("backend.streaming", True, 1),
    ("backend.cors_origins", ["http://a.example"], "http://a.example"),
    ("backend.llm.ollama.models", ["a", "b"], ["a", 2]),
    ("ui.language", "en", 5),
    ("ui.language", "en", ["en"]),
])
def test_leaf_types_are_strict(path: str, good: object, bad: object) -> None:
    check = leaf_type_validator(LEAVES_BY_PATH[path])

    assert check(good) == good
    with pytest.raises(vol.Invalid):
        check(bad)


def test_children_of_lists_the_keys_under_a_mapping() -> None:
    assert children_of("backend.llm.ollama") == ["host", "models", "default_model"]
    assert "llm" in children_of("backend")
    top = children_of("")
    assert top[:5] == list(REQUIRED_SECTIONS)
    assert set(FREEFORM_SECTIONS) <= set(top)
