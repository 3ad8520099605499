"""Layering: precedence, merging, provenance and the shadowed stack."""

from __future__ import annotations

from typing import Any

import pytest
from foundation_helpers import MINIMAL_CONFIG, describe, evaluate_texts

from hotconf.layers import DEFAULT_ORIGIN, Layered, Origin
from hotconf.sources import Document

SETTINGS = '{\n  "ui": {\n    "theme": "dark"\n  },\n  "backend": {"server_port": 8100}\n}\n'


def origin_of(snapshot: Any, path: str) -> str:
    return str(snapshot.layered.origins[tuple(path.split("."))])


# --- precedence ------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "environ", "value", "source"), [
    (None, {}, "auto", "config.yaml:7"),
    (SETTINGS, {}, "dark", "settings.json:3"),
    (SETTINGS, {"AUTOBOT_UI_THEME": "light"}, "light", "AUTOBOT_UI_THEME"),
    (None, {"AUTOBOT__UI__THEME": "light"}, "light", "AUTOBOT__UI__THEME"),
])
def test_each_layer_overrides_the_one_below(settings: str | None, environ: dict[str, str],
                                            value: str, source: str) -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, settings, environ)

    assert snapshot.get("ui.theme") == value
    assert origin_of(snapshot, "ui.theme") == source


def test_default_applies_when_no_layer_sets_a_leaf() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, SETTINGS)

    assert snapshot.get("ui.language") == "en"
    assert origin_of(snapshot, "ui.language") == "default"


def test_config_yaml_overrides_the_default() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG.replace("server_port: 8001", "server_port: 8005"))

    assert snapshot.get("backend.server_port") == 8005
    assert origin_of(snapshot, "backend.server_port") == "config.yaml:2"


def test_full_stack_order_defaults_yaml_json_env() -> None:
    snapshot = evaluate_texts(
        MINIMAL_CONFIG, SETTINGS, {"AUTOBOT_BACKEND_PORT": "8200"})

    [explanation] = snapshot.explain("backend.server_port")
    assert explanation.value == 8200
    assert str(explanation.origin) == "AUTOBOT_BACKEND_PORT"
    assert [(value, str(origin)) for value, origin in explanation.shadowed] == [
        (8100, "settings.json:5"), (8001, "config.yaml:2"), (8001, "default")]


# --- merging ---------------------------------------------------------------------------


def test_mappings_merge_key_by_key() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, SETTINGS)

    assert snapshot.get("ui") == {"theme": "dark", "font_size": 14, "language": "en",
                                  "developer_mode": False, "animations": True}
    assert origin_of(snapshot, "ui.theme") == "settings.json:3"
    assert origin_of(snapshot, "ui.font_size") == "config.yaml:8"
    assert origin_of(snapshot, "ui.language") == "default"


def test_nested_mappings_merge_at_every_depth() -> None:
    config = MINIMAL_CONFIG + "security: {}\n"
    config = config.replace("backend:\n", "backend:\n  llm:\n    ollama:\n      host: "
                                          "http://10.0.0.5:11434\n")
    settings = '{"backend": {"llm": {"ollama": {"default_model": "mistral"}}}}'

    snapshot = evaluate_texts(config, settings)

    ollama = snapshot.get("backend.llm.ollama")
    assert ollama == {"host": "http://10.0.0.5:11434", "models": ["llama3.2"],
                      "default_model": "mistral"}
    assert snapshot.get("backend.llm.provider") == "ollama"


def test_lists_are_replaced_whole() -> None:
    config = MINIMAL_CONFIG.replace(
        "backend:\n", "backend:\n  cors_origins:\n    - http://a.example\n"
                      "    - http://b.example\n")
    settings = '{"backend": {"cors_origins": ["http://c.example"]}}'

    snapshot = evaluate_texts(config, settings)

    assert snapshot.get("backend.cors_origins") == ["http://c.example"]


def test_a_list_from_the_environment_replaces_the_file_list() -> None:
    snapshot = evaluate_texts(environ={"AUTOBOT_ALLOWED_HOSTS": "example.org"})

    assert snapshot.get("security.allowed_hosts") == ["example.org"]


def test_scalar_replaced_by_a_mapping_and_back() -> None:
    config = MINIMAL_CONFIG + "prompts:\n  greeting: hello\n"

    to_mapping = evaluate_texts(config, '{"prompts": {"greeting": {"en": "hi"}}}')
    to_scalar = evaluate_texts(config.replace("greeting: hello", "greeting: {en: hi}"),
                               '{"prompts": {"greeting": "hello"}}')

    assert to_mapping.get("prompts.greeting") == {"en": "hi"}
    assert origin_of(to_mapping, "prompts.greeting.en") == "settings.json:1"
    assert to_scalar.get("prompts.greeting") == "hello"
    assert ("prompts", "greeting", "en") not in to_scalar.layered.origins


def test_settings_layer_leaves_the_base_document_as_read() -> None:
    # sync-to-base folds the file layers from these documents; a merge that wrote
    # into config.yaml's tree would fold settings.json into the base twice over.
    config = MINIMAL_CONFIG + "prompts:\n  greeting: hello\n"
    settings = '{"prompts": {"farewell": "bye"}, "ui": {"theme": "dark"}}'

    snapshot = evaluate_texts(config, settings, {"AUTOBOT__UI__FONT_SIZE": "20"})

    base = snapshot.documents["config.yaml"].tree
    assert base["prompts"] == {"greeting": "hello"}
    assert base["ui"] == {"theme": "auto", "font_size": 14}
    assert snapshot.get("prompts") == {"greeting": "hello", "farewell": "bye"}


def test_yaml_alias_shares_no_state_between_two_places_in_the_tree() -> None:
    config = MINIMAL_CONFIG + "prompts:\n  a: &p {x: one}\n  b: *p\n"

    snapshot = evaluate_texts(config, '{"prompts": {"a": {"y": "two"}}}')

    assert snapshot.get("prompts.a") == {"x": "one", "y": "two"}
    assert snapshot.get("prompts.b") == {"x": "one"}


def test_layering_does_not_change_the_schema_defaults() -> None:
    first = evaluate_texts()
    first.values["backend"]["cors_origins"].append("http://mutated.example")

    assert evaluate_texts().get("backend.cors_origins") == ["http://localhost:5173"]


# --- provenance ------------------------------------------------------------------------


def test_provenance_of_each_kind() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, SETTINGS, {"AUTOBOT__CHAT__MAX_MESSAGES": "300"})

    assert origin_of(snapshot, "backend.server_port") == "settings.json:5"
    assert origin_of(snapshot, "memory.redis.port") == "config.yaml:5"
    assert origin_of(snapshot, "chat.max_messages") == "AUTOBOT__CHAT__MAX_MESSAGES"
    assert origin_of(snapshot, "logging.file") == "default"
    kinds = {path: origin.kind for path, origin in snapshot.layered.origins.items()}
    assert kinds[("chat", "max_messages")] == "env"
    assert kinds[("memory", "redis", "port")] == "file"
    assert kinds[("logging", "file")] == "default"


def test_provenance_of_a_json_key_without_a_line_is_its_key_path() -> None:
    document = Document("settings.json", {"ui": {"theme": "dark"}})
    layered = Layered()
    layered.apply_defaults({"ui": {"theme": "auto"}})

    layered.apply_document(document)

    assert str(layered.origins[("ui", "theme")]) == "settings.json:ui.theme"


def test_origin_text() -> None:
    assert str(Origin("file", "config.yaml", 14, ("backend", "server_port"))) == "config.yaml:14"
    assert str(Origin("file", "settings.json", None, ("ui", "theme"))) == "settings.json:ui.theme"
    assert str(Origin("env", "AUTOBOT_BACKEND_PORT")) == "AUTOBOT_BACKEND_PORT"
    assert str(DEFAULT_ORIGIN) == "default"


def test_shadowed_values_keep_their_sources() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG, SETTINGS, {"AUTOBOT_UI_THEME": "light"})

    shadowed = snapshot.layered.shadowed[("ui", "theme")]
    assert [(value, str(origin)) for value, origin in shadowed] == [
        ("dark", "settings.json:3"), ("auto", "config.yaml:7"), ("auto", "default")]


def test_replacing_a_mapping_forgets_the_provenance_below_it() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG.replace("ui:\n  theme: auto\n  font_size: 14\n",
                                                     "ui: {}\n"), '{"ui": {"theme": "dark"}}')

    assert origin_of(snapshot, "ui.theme") == "settings.json:1"
    assert origin_of(snapshot, "ui.font_size") == "default"
    assert list(snapshot.report) == [], describe(snapshot)


def test_set_value_refuses_to_go_through_a_scalar() -> None:
    layered = Layered()
    layered.apply_defaults({"security": 5})

    why = layered.set_value(("security", "jwt_secret"), "x", Origin("env", "AUTOBOT_JWT_SECRET"))

    assert why == "security is not a mapping"
    assert layered.tree == {"security": 5}


def test_set_value_creates_missing_mappings_with_the_variable_as_origin() -> None:
    layered = Layered()

    why = layered.set_value(("security", "jwt_secret"), "x", Origin("env", "AUTOBOT_JWT_SECRET"))

    assert why is None
    assert layered.tree == {"security": {"jwt_secret": "x"}}
    assert str(layered.origins[("security",)]) == "AUTOBOT_JWT_SECRET"
    assert layered.get(("security", "jwt_secret")) == "x"


def test_get_of_a_missing_path_raises_key_error() -> None:
    layered = Layered()
    layered.apply_defaults({"ui": {"theme": "auto"}})

    with pytest.raises(KeyError):
        layered.get(("ui", "colour"))
    with pytest.raises(KeyError):
        layered.get(("ui", "theme", "deeper"))
