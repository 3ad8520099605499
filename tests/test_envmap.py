"""Environment variables: names, casting, applying, and what is reported."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from foundation_helpers import (
    MINIMAL_CONFIG,
    clean_environment,
    describe,
    evaluate_texts,
    findings_of,
    only_finding,
    sample_value,
)

from hotconf import envmap
from hotconf.envmap import CastError, cast, nested_name, variables
from hotconf.findings import Level
from hotconf.schema import DEPLOYMENT_SWITCHES, LEAVES, LEAVES_BY_PATH, Leaf
from hotconf.secrets import MASK

# The seed's named variables: the two it shows, and its eight "missing mappings".
SEED_NAMES = {
    "AUTOBOT_BACKEND_HOST": "backend.server_host",
    "AUTOBOT_BACKEND_PORT": "backend.server_port",
    "AUTOBOT_SESSION_TIMEOUT": "security.session_timeout_minutes",
    "AUTOBOT_ENABLE_ENCRYPTION": "security.enable_encryption",
    "AUTOBOT_KB_UPDATE_FREQUENCY": "knowledge_base.update_frequency_days",
    "AUTOBOT_KB_ENABLED": "knowledge_base.enabled",
    "AUTOBOT_DEVELOPER_MODE": "ui.developer_mode",
    "AUTOBOT_DEBUG_LOGGING": "developer.debug_logging",
    "AUTOBOT_VOICE_ENABLED": "voice_interface.enabled",
    "AUTOBOT_VOICE_RATE": "voice_interface.speech_rate",
}


def leaf(path: str) -> Leaf:
    return LEAVES_BY_PATH[path]


# --- names -----------------------------------------------------------------------------


def test_seed_variable_names_set_their_paths() -> None:
    table = envmap.variables_by_name()

    for name, path in SEED_NAMES.items():
        assert table[name].leaf.path == path, name
        assert not table[name].nested


def test_at_least_forty_paths_have_a_named_variable() -> None:
    named = {var.leaf.path for var in variables() if not var.nested}

    assert len(named) >= 40


def test_every_leaf_has_a_nested_variable() -> None:
    nested = {var.name: var.leaf.path for var in variables() if var.nested}

    assert len(nested) == len(LEAVES)
    assert nested["AUTOBOT__BACKEND__SERVER_PORT"] == "backend.server_port"
    assert nested["AUTOBOT__BACKEND__LLM__OLLAMA__HOST"] == "backend.llm.ollama.host"


def test_variable_names_are_unique() -> None:
    names = [var.name for var in variables()]

    assert len(names) == len(set(names))


def test_nested_name_follows_the_prefix() -> None:
    assert nested_name("memory.redis.port") == "AUTOBOT__MEMORY__REDIS__PORT"
    assert nested_name("memory.redis.port", "MYBOT") == "MYBOT__MEMORY__REDIS__PORT"


# --- casting ---------------------------------------------------------------------------

TRUE_SPELLINGS = ["true", "True", "TRUE", "tRuE", "1", "yes", "Yes", "YES", "on", "On", "ON",
                  " true ", "yes\n"]
FALSE_SPELLINGS = ["false", "False", "FALSE", "fAlSe", "0", "no", "No", "NO", "off", "Off",
                   "OFF", " off "]


@pytest.mark.parametrize("text", TRUE_SPELLINGS)
def test_bool_true_in_every_spelling(text: str) -> None:
    assert cast(leaf("backend.streaming"), text) is True


@pytest.mark.parametrize("text", FALSE_SPELLINGS)
def test_bool_false_in_every_spelling(text: str) -> None:
    assert cast(leaf("backend.streaming"), text) is False


@pytest.mark.parametrize("text", ["", "maybe", "2", "truee", "y", "n", "-1", "enabled"])
def test_bool_refuses_other_words(text: str) -> None:
    with pytest.raises(CastError, match="not a boolean"):
        cast(leaf("backend.streaming"), text)


@pytest.mark.parametrize(("text", "value"), [("8001", 8001), (" 9000 ", 9000), ("-3", -3),
                                             ("0", 0)])
def test_int_cast(text: str, value: int) -> None:
    assert cast(leaf("backend.server_port"), text) == value


@pytest.mark.parametrize("text", ["", "eight", "80.5", "1e3", "0x50", "8001 9000"])
def test_int_refuses_what_is_not_a_whole_number(text: str) -> None:
    with pytest.raises(CastError, match="not a whole number"):
        cast(leaf("backend.server_port"), text)


@pytest.mark.parametrize(("text", "value"), [("0.5", 0.5), ("1", 1.0), (" 1.25 ", 1.25),
                                             ("2e-1", 0.2)])
def test_float_cast(text: str, value: float) -> None:
    result = cast(leaf("backend.llm.temperature"), text)

    assert result == value
    assert isinstance(result, float)


@pytest.mark.parametrize("text", ["", "warm", "0,5"])
def test_float_refuses_what_is_not_a_number(text: str) -> None:
    with pytest.raises(CastError, match="not a number"):
        cast(leaf("backend.llm.temperature"), text)


@pytest.mark.parametrize(("text", "value"), [
    ('["llama3.2", "mistral"]', ["llama3.2", "mistral"]),
    (' ["a,b", "c"] ', ["a,b", "c"]),
    ("[]", []),
    ("llama3.2,mistral", ["llama3.2", "mistral"]),
    ("llama3.2, mistral , phi3", ["llama3.2", "mistral", "phi3"]),
    ("llama3.2", ["llama3.2"]),
    ("a,,b,", ["a", "b"]),
    ("", []),
])
def test_list_cast_from_json_or_commas(text: str, value: list[str]) -> None:
    assert cast(leaf("backend.llm.ollama.models"), text) == value


@pytest.mark.parametrize(("text", "words"), [
    ('["a", "b"', "not one"),
    ('["a", 2]', "must be a string"),
    ("[1, 2]", "must be a string"),
])
def test_list_refuses_bad_json(text: str, words: str) -> None:
    with pytest.raises(CastError, match=words):
        cast(leaf("backend.llm.ollama.models"), text)


def test_string_is_kept_as_given() -> None:
    assert cast(leaf("ui.language"), " de ") == " de "
    assert cast(leaf("backend.llm.provider"), "openai") == "openai"


# --- applying --------------------------------------------------------------------------


@pytest.mark.parametrize("leaf_", LEAVES, ids=lambda item: item.path)
def test_nested_variable_sets_every_leaf(leaf_: Leaf) -> None:
    name = nested_name(leaf_.path)
    text, value = sample_value(leaf_)

    snapshot = evaluate_texts(environ={name: text})

    assert snapshot.get(leaf_.path) == value
    assert str(snapshot.layered.origins[tuple(leaf_.path.split("."))]) == name
    assert findings_of(snapshot, category="env") == [], describe(snapshot)


@pytest.mark.parametrize("leaf_", [item for item in LEAVES if item.env],
                         ids=lambda item: item.env or "")
def test_named_variable_sets_its_leaf(leaf_: Leaf) -> None:
    assert leaf_.env is not None
    text, value = sample_value(leaf_)

    snapshot = evaluate_texts(environ={leaf_.env: text})

    assert snapshot.get(leaf_.path) == value
    assert str(snapshot.layered.origins[tuple(leaf_.path.split("."))]) == leaf_.env


@pytest.mark.parametrize(("name", "text", "path", "file_value"), [
    ("AUTOBOT_STREAMING", "maybe", "backend.streaming", True),
    ("AUTOBOT_BACKEND_PORT", "eighty", "backend.server_port", 8001),
    ("AUTOBOT_LLM_TEMPERATURE", "hot", "backend.llm.temperature", 0.7),
    ("AUTOBOT_OLLAMA_MODELS", '["a", 1]', "backend.llm.ollama.models", ["llama3.2"]),
    ("AUTOBOT__CHAT__MAX_MESSAGES", "lots", "chat.max_messages", 100),
])
def test_value_that_does_not_cast_is_an_error_and_not_applied(
        name: str, text: str, path: str, file_value: Any) -> None:
    snapshot = evaluate_texts(environ={name: text})

    finding = only_finding(snapshot)
    assert finding.level is Level.ERROR
    assert finding.category == "env"
    assert finding.source == name
    assert finding.path == path
    assert finding.message.startswith(f"{name} is not applied")
    assert finding.value == text
    assert snapshot.get(path) == file_value
    assert str(snapshot.layered.origins[tuple(path.split("."))]) != name


@pytest.mark.parametrize(("name", "text", "path", "check"), [
    ("AUTOBOT_BACKEND_PORT", "70000", "backend.server_port", "range"),
    ("AUTOBOT_BACKEND_PORT", "0", "backend.server_port", "range"),
    ("AUTOBOT_CHAT_MAX_MESSAGES", "5", "chat.max_messages", "range"),
    ("AUTOBOT_SESSION_TIMEOUT", "2000", "security.session_timeout_minutes", "range"),
    ("AUTOBOT_LLM_TEMPERATURE", "2.5", "backend.llm.temperature", "range"),
    ("AUTOBOT_UI_THEME", "purple", "ui.theme", "range"),
    ("AUTOBOT_OLLAMA_HOST", "localhost:11434", "backend.llm.ollama.host", "url"),
    ("AUTOBOT_CORS_ORIGINS", "http://ok.example,nourl", "backend.cors_origins", "url"),
])
def test_value_that_fails_its_check_is_an_error_and_not_applied(
        name: str, text: str, path: str, check: str) -> None:
    before = evaluate_texts().get(path)

    snapshot = evaluate_texts(environ={name: text})

    finding = only_finding(snapshot)
    assert (finding.level, finding.category, finding.source) == (Level.ERROR, "env", name)
    assert finding.details["check"] == check
    assert name in finding.message
    assert snapshot.get(path) == before


def test_nested_name_wins_over_the_named_variable_with_a_warning() -> None:
    snapshot = evaluate_texts(environ={"AUTOBOT_BACKEND_PORT": "9000",
                                       "AUTOBOT__BACKEND__SERVER_PORT": "9100"})

    assert snapshot.get("backend.server_port") == 9100
    [warning] = findings_of(snapshot, category="env")
    assert warning.level is Level.WARNING
    assert "AUTOBOT_BACKEND_PORT" in warning.message
    assert "AUTOBOT__BACKEND__SERVER_PORT wins" in warning.message


def test_prefix_is_configurable() -> None:
    environ = {"MYBOT_BACKEND_PORT": "9000", "MYBOT__UI__THEME": "dark",
               "AUTOBOT_BACKEND_TIMEOUT": "5", "AUTOBOT__UI__FONT_SIZE": "20"}

    snapshot = evaluate_texts(environ=environ, prefix="MYBOT")

    assert snapshot.get("backend.server_port") == 9000
    assert snapshot.get("ui.theme") == "dark"
    assert snapshot.get("backend.timeout") == 60, "AUTOBOT_* is not read under another prefix"
    assert snapshot.get("ui.font_size") == 14
    assert [var.name for var in variables("MYBOT")][:2] == ["MYBOT_BACKEND_HOST",
                                                            "MYBOT_BACKEND_PORT"]


def test_unknown_nested_variable_warns_with_a_suggestion() -> None:
    snapshot = evaluate_texts(environ={"AUTOBOT__BACKEND__SERVR_PORT": "9000"})

    finding = only_finding(snapshot)
    assert (finding.level, finding.category) == (Level.WARNING, "env")
    assert finding.source == "AUTOBOT__BACKEND__SERVR_PORT"
    assert "did you mean AUTOBOT__BACKEND__SERVER_PORT?" in finding.message
    assert finding.details["suggestion"] == "AUTOBOT__BACKEND__SERVER_PORT"
    assert snapshot.get("backend.server_port") == 8001


def test_unknown_nested_variable_far_from_any_name_warns_without_a_suggestion() -> None:
    finding = only_finding(evaluate_texts(environ={"AUTOBOT__WEATHER": "sunny"}))

    assert finding.level is Level.WARNING
    assert "names no configuration key" in finding.message
    assert "did you mean" not in finding.message


def test_unknown_nested_variable_under_another_prefix_warns() -> None:
    finding = only_finding(evaluate_texts(environ={"MYBOT__UI__THEMES": "dark",
                                                   "AUTOBOT__UI__THEMES": "dark"},
                                          prefix="MYBOT"))

    assert finding.source == "MYBOT__UI__THEMES"


def test_deployment_switches_and_unrelated_variables_are_not_reported() -> None:
    environ = dict.fromkeys(DEPLOYMENT_SWITCHES, "true")
    environ.update({"PATH": "/usr/bin", "AUTOBOT_SOMETHING_ELSE": "1", "AUTOBOTX__A": "1",
                    "HOME": "/root"})

    snapshot = evaluate_texts(environ=environ)

    assert set(DEPLOYMENT_SWITCHES) == {"AUTOBOT_CONFIG_AUTO_RELOAD",
                                        "AUTOBOT_CONFIG_VALIDATION_ON_STARTUP",
                                        "AUTOBOT_CONFIG_DISTRIBUTED_RELOAD"}
    assert list(snapshot.report) == [], describe(snapshot)
    assert snapshot.overrides == []


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from hotconf.snapshot import evaluate
    clean_environment(monkeypatch)
    monkeypatch.setenv("AUTOBOT_BACKEND_PORT", "9200")

    snapshot = evaluate({"config.yaml": MINIMAL_CONFIG.encode()}, evaluate_texts().config_dir)

    assert snapshot.get("backend.server_port") == 9200


def test_env_creates_a_missing_optional_leaf() -> None:
    snapshot = evaluate_texts(environ={"AUTOBOT_JWT_SECRET": "s3cret-value"})

    assert snapshot.get("security.jwt_secret") == "s3cret-value"


def test_env_cannot_set_a_leaf_below_a_value_that_is_not_a_mapping() -> None:
    snapshot = evaluate_texts(MINIMAL_CONFIG + "security: 5\n",
                              environ={"AUTOBOT_JWT_SECRET": "s3cret-value"})

    [env_error] = findings_of(snapshot, category="env")
    assert env_error.level is Level.ERROR
    assert "security is not a mapping" in env_error.message
    assert env_error.value == MASK
    assert snapshot.get("security") == 5


# --- overrides of file values: INFO only when the value differs after casting ----------


def test_env_overriding_a_different_file_value_is_info() -> None:
    snapshot = evaluate_texts(environ={"AUTOBOT_BACKEND_PORT": "9000"})

    finding = only_finding(snapshot)
    assert (finding.level, finding.category) == (Level.INFO, "override")
    assert finding.source == "AUTOBOT_BACKEND_PORT"
    assert finding.path == "backend.server_port"
    assert finding.details == {"file": 8001, "file_source": "config.yaml:2", "env": 9000}
    assert "config.yaml:2" in finding.message


@pytest.mark.parametrize(("name", "text"), [
    ("AUTOBOT_BACKEND_PORT", "8001"),
    ("AUTOBOT_BACKEND_PORT", " 8001 "),
    ("AUTOBOT__UI__THEME", "auto"),
    ("AUTOBOT__UI__FONT_SIZE", "14"),
])
def test_env_equal_to_the_file_value_after_casting_is_not_reported(name: str,
                                                                   text: str) -> None:
    snapshot = evaluate_texts(environ={name: text})

    assert list(snapshot.report) == [], describe(snapshot)
    assert [override.variable for override in snapshot.overrides] == [name]


@pytest.mark.parametrize(("config", "name", "text"), [
    ("backend:\n  streaming: true\n", "AUTOBOT_STREAMING", "yes"),
    ("backend:\n  llm:\n    temperature: 1\n", "AUTOBOT_LLM_TEMPERATURE", "1.0"),
    ("backend:\n  llm:\n    ollama:\n      models: [a, b]\n", "AUTOBOT_OLLAMA_MODELS", "a,b"),
    ("backend:\n  llm:\n    ollama:\n      models: [a, b]\n", "AUTOBOT_OLLAMA_MODELS",
     '["a","b"]'),
])
def test_typed_equal_values_are_not_a_difference(config: str, name: str, text: str) -> None:
    yaml_text = config + "memory: {}\nui: {}\nchat: {}\nlogging: {}\n"

    snapshot = evaluate_texts(yaml_text, environ={name: text})

    assert list(snapshot.report) == [], describe(snapshot)


def test_env_overriding_settings_json_names_settings_json() -> None:
    snapshot = evaluate_texts(settings_json='{\n "ui": {\n  "theme": "dark"\n }\n}',
                              environ={"AUTOBOT_UI_THEME": "light"})

    finding = only_finding(snapshot)
    assert finding.details["file_source"] == "settings.json:3"
    assert finding.details["file"] == "dark"


def test_env_overriding_a_default_is_not_reported() -> None:
    snapshot = evaluate_texts(environ={"AUTOBOT_VOICE_RATE": "200"})

    assert list(snapshot.report) == [], describe(snapshot)
    assert snapshot.get("voice_interface.speech_rate") == 200


# --- logging ---------------------------------------------------------------------------


def test_one_info_line_counts_the_overrides_and_debug_lists_each_masked(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hotconf.envmap")
    environ = {"AUTOBOT_BACKEND_PORT": "9000", "AUTOBOT_REDIS_PASSWORD": "hunter2-redis",
               "AUTOBOT__UI__THEME": "dark"}

    evaluate_texts(environ=environ)

    records = [record for record in caplog.records if record.name == "hotconf.envmap"]
    info = [record.getMessage() for record in records if record.levelno == logging.INFO]
    debug = [record.getMessage() for record in records if record.levelno == logging.DEBUG]
    assert info == ["applied 3 environment overrides"]
    assert len(debug) == 3
    assert any("AUTOBOT_BACKEND_PORT=9000" in line for line in debug)
    assert any("AUTOBOT_REDIS_PASSWORD" in line and MASK in line for line in debug)
    assert "hunter2-redis" not in caplog.text


def test_no_override_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hotconf.envmap")

    evaluate_texts(environ={"AUTOBOT_STREAMING": "maybe"})

    assert [record for record in caplog.records if record.name == "hotconf.envmap"] == []


@pytest.mark.parametrize("text", ["8_001", "\u0663", "0x10", "1.0"])
def test_integers_are_plain_ascii_digits_only(text: str) -> None:
    from hotconf.envmap import CastError, cast
    from hotconf.schema import LEAVES_BY_PATH

    with pytest.raises(CastError, match="not a whole number"):
        cast(LEAVES_BY_PATH["backend.server_port"], text)


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1_0.5"])
def test_numbers_must_be_finite_decimals(text: str) -> None:
    from hotconf.envmap import CastError, cast
    from hotconf.schema import LEAVES_BY_PATH

    with pytest.raises(CastError, match="finite decimal"):
        cast(LEAVES_BY_PATH["voice_interface.volume"], text)
