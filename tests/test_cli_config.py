"""The validate, explain, env and show commands: output, JSON shape and exit codes.

Most run through click's CliRunner; a few run the installed ``hotconf`` script and
``python -m controller`` as real processes, the way an operator or CI calls them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from foundation_helpers import (
    EXAMPLE_DIR,
    MINIMAL_CONFIG,
    REPO_ROOT,
    clean_environment,
    write_config_dir,
)

from controller.cli import main
from controller.config_commands import environment_markdown
from hotconf.envmap import variables
from hotconf.secrets import MASK

HOTCONF_SCRIPT = Path(sys.executable).with_name("hotconf")

ERROR_CONFIG = MINIMAL_CONFIG.replace("server_port: 8001", "server_port: 70000")
WARNING_CONFIG = MINIMAL_CONFIG.replace("theme: auto", "thme: auto")
CRITICAL_CONFIG = "ui: {}\n"
INFO_SETTINGS = '{"ui": {"font_size": 14}}'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)


def invoke(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def config_dir_with(tmp_path: Path, config_yaml: str,
                    settings_json: str | None = None) -> str:
    return str(write_config_dir(tmp_path / "autobot", config_yaml, settings_json))


# --- validate: exit codes --------------------------------------------------------------


def test_validate_example_exits_0() -> None:
    result = invoke("validate", "--config-dir", str(EXAMPLE_DIR))

    assert result.exit_code == 0
    assert "no findings: the configuration is valid" in result.stdout
    assert str(EXAMPLE_DIR) in result.stdout


@pytest.mark.parametrize(("config_yaml", "settings_json", "plain", "strict"), [
    pytest.param(MINIMAL_CONFIG, None, 0, 0, id="clean"),
    pytest.param(MINIMAL_CONFIG, INFO_SETTINGS, 0, 0, id="info"),
    pytest.param(WARNING_CONFIG, None, 0, 1, id="warning"),
    pytest.param(ERROR_CONFIG, None, 1, 1, id="error"),
    pytest.param(CRITICAL_CONFIG, None, 3, 3, id="critical"),
    pytest.param(MINIMAL_CONFIG, "{", 3, 3, id="critical-settings"),
])
def test_validate_exit_codes(tmp_path: Path, config_yaml: str, settings_json: str | None,
                             plain: int, strict: int) -> None:
    directory = config_dir_with(tmp_path, config_yaml, settings_json)

    assert invoke("validate", "--config-dir", directory).exit_code == plain
    assert invoke("validate", "--config-dir", directory, "--strict").exit_code == strict
    assert invoke("validate", "--config-dir", directory, "--json").exit_code == plain


def test_validate_error_from_the_environment_exits_1(tmp_path: Path) -> None:
    directory = config_dir_with(tmp_path, MINIMAL_CONFIG)

    result = invoke("validate", "--config-dir", directory, env={"AUTOBOT_BACKEND_PORT": "x"})

    assert result.exit_code == 1
    assert "AUTOBOT_BACKEND_PORT is not applied" in result.stdout


@pytest.mark.parametrize("args", [
    ["validate", "--no-such-option"],
    ["explain"],
    ["show", "--json", "extra-argument"],
    ["no-such-command"],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 2
    assert "Usage:" in result.stderr


def test_config_dir_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")

    result = CliRunner().invoke(main, ["validate", "--config-dir", str(target)])

    assert result.exit_code == 2


# --- validate: the report --------------------------------------------------------------


def test_validate_groups_findings_by_level_worst_first(tmp_path: Path) -> None:
    config = ERROR_CONFIG.replace("theme: auto", "thme: auto")
    directory = config_dir_with(tmp_path, config, INFO_SETTINGS)

    result = invoke("validate", "--config-dir", directory)

    lines = result.stdout.splitlines()
    assert lines[0].startswith(directory)
    headings = [line for line in lines if not line.startswith(" ")][1:]
    assert headings == ["ERROR (1)", "WARNING (1)", "INFO (1)",
                        "summary: 0 critical, 1 errors, 1 warnings, 1 info"]
    error_at = lines.index("ERROR (1)")
    assert lines[error_at + 1].startswith("  config.yaml:2: backend.server_port: 70000 is above")
    assert "did you mean 'ui.theme'?" in lines[lines.index("WARNING (1)") + 1]


def test_validate_report_has_no_colour_when_piped(tmp_path: Path) -> None:
    result = invoke("validate", "--config-dir", config_dir_with(tmp_path, ERROR_CONFIG))

    assert "\x1b[" not in result.stdout


def test_validate_json_has_the_api_shape(tmp_path: Path) -> None:
    directory = config_dir_with(tmp_path, ERROR_CONFIG.replace("theme: auto", "thme: auto"),
                                INFO_SETTINGS)

    result = invoke("validate", "--config-dir", directory, "--json")

    body = json.loads(result.stdout)
    assert {"status", "timestamp", "summary", "issues"} <= set(body)
    assert body["status"] == "healthy"
    datetime.fromisoformat(body["timestamp"])
    assert body["summary"] == {"total": 3, "critical": 0, "errors": 1, "warnings": 1, "info": 1}
    assert body["config_dir"] == directory
    assert len(body["version"]) == 12
    for issue in body["issues"]:
        assert list(issue) == ["level", "category", "message", "path", "value", "details",
                               "source"]
    by_level = {issue["level"]: issue for issue in body["issues"]}
    assert by_level["error"] == {
        "level": "error", "category": "range",
        "message": by_level["error"]["message"], "path": "backend.server_port",
        "value": 70000, "details": {}, "source": "config.yaml:2",
    }
    assert by_level["warning"]["category"] == "unknown"
    assert by_level["info"]["source"] == "settings.json:1"


def test_validate_json_of_a_critical_config_is_unhealthy(tmp_path: Path) -> None:
    directory = config_dir_with(tmp_path, "backend: [\n")

    result = invoke("validate", "--config-dir", directory, "--json")

    body = json.loads(result.stdout)
    assert result.exit_code == 3
    assert body["status"] == "unhealthy"
    assert body["summary"]["critical"] == 1
    [issue] = body["issues"]
    assert issue["category"] == "syntax"
    assert issue["details"] == {"line": 2, "column": 1}
    assert issue["source"] == "config.yaml:2"


def test_config_dir_comes_from_hotconf_config_dir(tmp_path: Path) -> None:
    directory = config_dir_with(tmp_path, ERROR_CONFIG)

    from_env = invoke("validate", "--json", env={"HOTCONF_CONFIG_DIR": directory})
    option_wins = invoke("validate", "--json", "--config-dir", str(EXAMPLE_DIR),
                         env={"HOTCONF_CONFIG_DIR": directory})

    assert json.loads(from_env.stdout)["config_dir"] == directory
    assert from_env.exit_code == 1
    assert json.loads(option_wins.stdout)["config_dir"] == str(EXAMPLE_DIR)
    assert option_wins.exit_code == 0


def test_config_dir_defaults_to_etc_autobot() -> None:
    result = invoke("validate", "--json")

    assert json.loads(result.stdout)["config_dir"] == "/etc/autobot"
    help_text = invoke("validate", "--help").stdout
    assert "HOTCONF_CONFIG_DIR" in help_text
    assert "/etc/autobot" in help_text


# --- explain ---------------------------------------------------------------------------


def test_explain_prints_value_source_and_shadowed(tmp_path: Path) -> None:
    directory = config_dir_with(tmp_path, MINIMAL_CONFIG, '{\n "ui": {"theme": "dark"}\n}')

    result = invoke("explain", "ui.theme", "--config-dir", directory,
                    env={"AUTOBOT_UI_THEME": "light"})

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        'ui.theme = "light"',
        "  from     AUTOBOT_UI_THEME",
        '  shadows  settings.json:2 = "dark"',
        '  shadows  config.yaml:7 = "auto"',
        '  shadows  default = "auto"',
    ]


def test_explain_json(tmp_path: Path) -> None:
    directory = config_dir_with(tmp_path, MINIMAL_CONFIG)

    result = invoke("explain", "backend.server_port", "--config-dir", directory, "--json")

    assert json.loads(result.stdout) == [{
        "path": "backend.server_port", "set": True, "value": 8001, "source": "config.yaml:2",
        "shadowed": [{"value": 8001, "source": "default"}],
    }]


def test_explain_of_a_section_lists_its_leaves() -> None:
    result = invoke("explain", "memory.redis", "--config-dir", str(EXAMPLE_DIR))

    assert result.exit_code == 0
    assert "memory.redis.port = 6379" in result.stdout
    assert 'memory.redis.password = "********"' in result.stdout


def test_explain_of_a_leaf_nothing_sets(tmp_path: Path) -> None:
    result = invoke("explain", "security.jwt_secret", "--config-dir",
                    config_dir_with(tmp_path, MINIMAL_CONFIG))

    assert result.exit_code == 0
    assert "security.jwt_secret is not set" in result.stdout


def test_explain_of_a_freeform_key() -> None:
    result = invoke("explain", "prompts.default", "--config-dir", str(EXAMPLE_DIR))

    assert result.exit_code == 0
    assert "from     settings.json:15" in result.stdout


def test_explain_of_an_unknown_path_suggests_one() -> None:
    result = CliRunner().invoke(main, ["explain", "backend.server_prot", "--config-dir",
                                       str(EXAMPLE_DIR)])

    assert result.exit_code == 1
    assert "did you mean backend.server_port?" in result.stderr
    assert "Traceback" not in result.output


# --- env -------------------------------------------------------------------------------


def test_env_lists_every_variable_with_path_type_and_current_value() -> None:
    result = invoke("env", env={"AUTOBOT_BACKEND_PORT": "9000",
                                "AUTOBOT__MEMORY__REDIS__PASSWORD": "hunter2-redis"})

    lines = result.stdout.splitlines()
    assert len(lines) == len(variables())
    port = next(line for line in lines if line.startswith("AUTOBOT_BACKEND_PORT "))
    assert port.split() == ["AUTOBOT_BACKEND_PORT", "backend.server_port", "int", "=", "9000"]
    password = next(line for line in lines
                    if line.startswith("AUTOBOT__MEMORY__REDIS__PASSWORD "))
    assert password.split()[-2:] == ["=", MASK]
    assert "hunter2" not in result.output
    unset = next(line for line in lines if line.startswith("AUTOBOT_BACKEND_HOST "))
    assert unset.split() == ["AUTOBOT_BACKEND_HOST", "backend.server_host", "str"]


def test_env_follows_the_prefix() -> None:
    result = invoke("env", "--prefix", "MYBOT", env={"MYBOT_UI_THEME": "dark"})

    lines = result.stdout.splitlines()
    assert all(line.startswith("MYBOT_") for line in lines)
    assert any(line.startswith("MYBOT__BACKEND__SERVER_PORT ") for line in lines)
    assert next(line for line in lines if line.startswith("MYBOT_UI_THEME ")).endswith("= dark")


def test_env_markdown_is_the_generated_reference() -> None:
    result = invoke("env", "--markdown")

    assert result.stdout == environment_markdown()


# --- show ------------------------------------------------------------------------------


def test_show_prints_the_effective_configuration_masked() -> None:
    result = invoke("show", "--config-dir", str(EXAMPLE_DIR),
                    env={"AUTOBOT_BACKEND_PORT": "9000"})

    assert result.exit_code == 0
    assert "secrets masked" in result.stdout.splitlines()[0]
    assert "server_port: 9000" in result.stdout
    assert "change-me" not in result.stdout
    assert result.stdout.count(MASK) == 3
    assert "max_tokens: 4096" in result.stdout


def test_show_json_is_the_masked_tree(tmp_path: Path) -> None:
    result = invoke("show", "--config-dir", str(EXAMPLE_DIR), "--json")

    body = json.loads(result.stdout)
    assert body["ui"]["theme"] == "dark"
    assert body["memory"]["redis"]["password"] == MASK
    assert body["backend"]["api_key"] == MASK
    assert body["prompts"]["code_review"].startswith("Review the code")


def test_show_of_a_critical_config_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["show", "--config-dir",
                                       config_dir_with(tmp_path, CRITICAL_CONFIG)])

    assert result.exit_code == 3
    assert "CRITICAL" in result.stderr


# --- bad input never gives a traceback -------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "show", "explain"])
@pytest.mark.parametrize(("config_yaml", "settings_json"), [
    pytest.param(None, None, id="missing"),
    pytest.param(b"\xff\xfe", None, id="not-utf8"),
    pytest.param("a: &a [*a]\n", None, id="recursive-alias"),
    pytest.param("[]\n", None, id="list"),
    pytest.param(MINIMAL_CONFIG, "[1,", id="bad-json"),
])
def test_bad_input_gives_a_finding_not_a_traceback(tmp_path: Path, command: str,
                                                   config_yaml: str | bytes | None,
                                                   settings_json: str | None) -> None:
    directory = config_dir_with(tmp_path, "")
    write_config_dir(Path(directory), config_yaml, settings_json)
    args = [command, "--config-dir", directory]
    if command == "explain":
        args.insert(1, "backend.server_port")

    result = CliRunner().invoke(main, args)

    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.output
    if command == "validate":
        assert result.exit_code == 3


# --- real processes --------------------------------------------------------------------


def process_env(**extra: str) -> dict[str, str]:
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith(("AUTOBOT", "HOTCONF"))}
    environ.update(extra)
    return environ


def run_hotconf(*args: str, env: dict[str, str] | None = None,
                module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "controller"] if module else [str(HOTCONF_SCRIPT)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30,
                          env=env if env is not None else process_env(), cwd=REPO_ROOT,
                          check=False)


def test_installed_script_exists() -> None:
    assert HOTCONF_SCRIPT.exists(), f"{HOTCONF_SCRIPT} is missing: run make install"


@pytest.mark.parametrize(("config_yaml", "expected"), [
    (MINIMAL_CONFIG, 0), (ERROR_CONFIG, 1), ("backend: [\n", 3),
])
def test_script_exit_codes(tmp_path: Path, config_yaml: str, expected: int) -> None:
    completed = run_hotconf("validate", "--config-dir", config_dir_with(tmp_path, config_yaml))

    assert completed.returncode == expected, completed.stderr
    assert "Traceback" not in completed.stderr


def test_script_strict_and_usage_errors(tmp_path: Path) -> None:
    directory = config_dir_with(tmp_path, WARNING_CONFIG)

    assert run_hotconf("validate", "--config-dir", directory).returncode == 0
    assert run_hotconf("validate", "--config-dir", directory, "--strict").returncode == 1
    usage = run_hotconf("validate", "--bogus")
    assert usage.returncode == 2
    assert "No such option" in usage.stderr


@pytest.mark.parametrize("kind", ["symlink-loop", "directory", "fifo", "too-large",
                                  "alias-bomb"])
def test_script_reports_an_unusable_config_yaml_as_one_critical(tmp_path: Path,
                                                                 kind: str) -> None:
    directory = tmp_path / "autobot"
    directory.mkdir()
    target = directory / "config.yaml"
    if kind == "symlink-loop":
        target.symlink_to("config.yaml")
    elif kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "too-large":
        target.write_bytes(MINIMAL_CONFIG.encode() + b"#" * (1024 * 1024))
    else:
        target.write_text("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)))

    completed = run_hotconf("validate", "--config-dir", str(directory))

    assert completed.returncode == 3
    assert "CRITICAL (1)" in completed.stdout
    assert "summary: 1 critical, 0 errors, 0 warnings, 0 info" in completed.stdout
    assert completed.stderr == ""


def test_module_json_through_hotconf_config_dir(tmp_path: Path) -> None:
    directory = config_dir_with(tmp_path, ERROR_CONFIG)

    completed = run_hotconf("validate", "--json", module=True,
                            env=process_env(HOTCONF_CONFIG_DIR=directory))

    assert completed.returncode == 1
    body = json.loads(completed.stdout)
    assert body["config_dir"] == directory
    assert body["summary"]["errors"] == 1
    assert body["issues"][0]["source"] == "config.yaml:2"


def test_script_on_a_copy_of_the_example_with_overrides(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_DIR, tmp_path / "autobot")
    environ = process_env(AUTOBOT_BACKEND_PORT="9000", AUTOBOT_REDIS_PASSWORD="hunter2-redis")

    validated = run_hotconf("validate", "--config-dir", str(tmp_path / "autobot"), env=environ)
    shown = run_hotconf("show", "--config-dir", str(tmp_path / "autobot"), env=environ)

    assert validated.returncode == 0
    assert "INFO (2)" in validated.stdout
    assert "server_port: 9000" in shown.stdout
    assert "hunter2" not in validated.stdout + validated.stderr + shown.stdout + shown.stderr


def test_env_prefix_option_and_variable_choose_the_overriding_variables(tmp_path: Path) -> None:
    config_dir = tmp_path / "autobot"
    shutil.copytree(EXAMPLE_DIR, config_dir)

    result = invoke("explain", "ui.theme", "--config-dir", str(config_dir), "--env-prefix",
                    "MYBOT", env={"MYBOT_UI_THEME": "light", "AUTOBOT_UI_THEME": "auto"})
    assert result.exit_code == 0, result.output
    assert "from     MYBOT_UI_THEME" in result.output

    result = invoke("show", "--config-dir", str(config_dir), "--json",
                    env={"HOTCONF_ENV_PREFIX": "MYBOT", "MYBOT__CHAT__MAX_MESSAGES": "321"})
    assert json.loads(result.output)["chat"]["max_messages"] == 321
