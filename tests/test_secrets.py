"""Secrets: which keys are secret, how they are masked, and that none ever shows.

A secret set in config.yaml, settings.json or the environment must not appear in a
finding, in validate/show/explain/env output, or in a log line at any level.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from foundation_helpers import MINIMAL_CONFIG, clean_environment, write_config_dir

from controller.cli import main
from hotconf import Config
from hotconf.findings import Finding, Level
from hotconf.secrets import MASK, is_secret_key, is_secret_path, mask_text, mask_tree, mask_value
from hotconf.snapshot import load_snapshot
from hotconf.sources import parse_document


@pytest.mark.parametrize("key", [
    "password", "redis_password", "PASSWORD", "passwd", "db_passwd", "passphrase", "secret",
    "jwt_secret", "client_secret", "token", "api_token", "access_token", "credentials",
    "key", "api_key", "apikey", "keys", "private_key", "privatekey", "ssh-key",
    "memory.redis.password", "backend.llm.openai.api_key",
])
def test_secret_names(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", [
    "host", "port", "server_port", "keyboard_layout", "monkey", "keepalive", "max_tokens",
    "min_password_length", "num_keys", "timeout", "backend.llm.max_tokens", "passage",
    "language",
])
def test_names_that_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


def test_a_path_below_a_secret_name_is_secret() -> None:
    assert is_secret_path("credentials.user")
    assert is_secret_path("backend.api_key")
    assert not is_secret_path("backend.server_port")


def test_mask_value_masks_a_set_secret_only() -> None:
    assert mask_value("memory.redis.password", "hunter2") == MASK
    assert mask_value("memory.redis.password", None) is None
    assert mask_value("memory.redis.password", "") == ""
    assert mask_value("memory.redis.port", 6379) == 6379


def test_mask_tree_masks_at_every_depth_and_leaves_the_input_alone() -> None:
    tree = {"memory": {"redis": {"password": "hunter2", "port": 6379}},
            "credentials": {"user": "u", "pass": "p"},
            "hosts": [{"name": "a", "token": "t0k3n"}, {"name": "b", "token": None}],
            "security": {"jwt_secret": ""}}

    masked = mask_tree(tree)

    assert masked == {"memory": {"redis": {"password": MASK, "port": 6379}},
                      "credentials": MASK,
                      "hosts": [{"name": "a", "token": MASK}, {"name": "b", "token": None}],
                      "security": {"jwt_secret": ""}}
    assert tree["memory"]["redis"]["password"] == "hunter2"


def test_mask_text_replaces_each_known_secret() -> None:
    text = "connect with hunter2 and hunter22 or ab"

    assert mask_text(text, ["hunter2", "hunter22", "ab"]) == f"connect with {MASK} and {MASK} or ab"


# --- no secret anywhere -----------------------------------------------------------------

FILE_SECRETS = ["file-redis-pw-1", "file-api-key-2", "file-jwt-secret-3", "settings-key-4",
                "file-openai-key-5"]
ENV_SECRETS = ["env-jwt-secret-6", "env-redis-pw-7", "env-redis-pw-8"]
EVERY_SECRET = FILE_SECRETS + ENV_SECRETS

SECRET_CONFIG = MINIMAL_CONFIG.replace("server_port: 8001", """server_port: 8001
  api_key: file-api-key-2
  llm:
    openai:
      api_key: [file-openai-key-5]""").replace("  redis:\n", """  redis:
    password: file-redis-pw-1
""") + "security:\n  jwt_secret: file-jwt-secret-3\n"

# Repeats the base api_key (INFO with the value), replaces nothing else secret.
SECRET_SETTINGS = json.dumps({"backend": {"api_key": "file-api-key-2"},
                              "prompts": {"note": "no secret here"},
                              "memory": {"redis": {"password": "settings-key-4"}}})

SECRET_ENVIRON = {
    "AUTOBOT_JWT_SECRET": "env-jwt-secret-6",
    "AUTOBOT_REDIS_PASSWORD": "env-redis-pw-7",
    "AUTOBOT__MEMORY__REDIS__PASSWORD": "env-redis-pw-8",
}


@pytest.fixture
def secret_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    clean_environment(monkeypatch)
    return write_config_dir(tmp_path / "autobot", SECRET_CONFIG, SECRET_SETTINGS)


def assert_no_secret(text: str) -> None:
    leaked = [secret for secret in EVERY_SECRET if secret in text]
    assert leaked == [], f"secrets leaked: {leaked}"


def test_findings_about_secrets_show_no_secret(secret_dir: Path) -> None:
    snapshot = load_snapshot(secret_dir, SECRET_ENVIRON)

    categories = {(finding.category, finding.path) for finding in snapshot.report}
    assert ("type", "backend.llm.openai.api_key") in categories
    assert ("override", "backend.api_key") in categories
    assert ("override", "security.jwt_secret") in categories
    assert ("env", "memory.redis.password") in categories
    assert_no_secret(json.dumps(snapshot.report.to_dict()))
    assert_no_secret("\n".join(str(finding) for finding in snapshot.report))
    assert snapshot.get("memory.redis.password") == "env-redis-pw-8"


@pytest.mark.parametrize("text", ["!!int file-redis-pw-1", "2001-13-45"])
def test_unreadable_secret_value_is_not_quoted(text: str) -> None:
    finding = parse_document("config.yaml",
                             f"memory:\n  redis:\n    password: {text}\n".encode())

    assert isinstance(finding, Finding)
    assert finding.level is Level.CRITICAL
    assert "memory.redis.password at line 3" in finding.message
    assert text.split()[-1] not in str(finding)


@pytest.mark.parametrize("args", [
    ["validate"], ["validate", "--json"], ["show"], ["show", "--json"],
    ["explain", "memory.redis.password"], ["explain", "memory.redis", "--json"],
    ["explain", "security.jwt_secret"], ["explain", "backend", "--json"],
    ["env"],
])
def test_command_output_and_logs_show_no_secret(secret_dir: Path, args: list[str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    if args[0] != "env":
        args = [*args, "--config-dir", str(secret_dir)]

    result = CliRunner().invoke(main, ["-vv", *args], env=SECRET_ENVIRON)

    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert_no_secret(result.output)
    assert_no_secret(caplog.text)
    if args[0] in ("show", "explain", "env"):
        assert MASK in result.output
    if args[0] != "env":
        assert f"override AUTOBOT__MEMORY__REDIS__PASSWORD={MASK!r}" in caplog.text


def test_config_logs_show_no_secret(secret_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    config = Config.load(secret_dir, SECRET_ENVIRON)
    write_config_dir(secret_dir, SECRET_CONFIG.replace("8001", "8002"), SECRET_SETTINGS)
    config.reload()
    write_config_dir(secret_dir, "memory: {redis: {password: file-redis-pw-1}}\n")
    rejected = config.reload()

    assert rejected.state == "rejected"
    assert any("configuration error" in record.getMessage() for record in caplog.records)
    assert_no_secret(caplog.text)


def test_debug_log_of_a_real_process_shows_no_secret(secret_dir: Path) -> None:
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith(("AUTOBOT", "HOTCONF"))}
    environ.update(SECRET_ENVIRON)

    completed = subprocess.run(
        [sys.executable, "-m", "controller", "-vv", "show", "--config-dir", str(secret_dir)],
        capture_output=True, text=True, timeout=30, env=environ, check=False)

    assert "DEBUG hotconf.envmap: override AUTOBOT__MEMORY__REDIS__PASSWORD=" in completed.stderr
    assert_no_secret(completed.stdout + completed.stderr)


def test_a_password_inside_a_url_is_masked_whatever_the_key() -> None:
    from hotconf.secrets import mask_tree

    masked = mask_tree({"memory": {"url": "redis://:hunter2@10.0.0.1:6379/0"},
                        "origins": ["https://user:pa55@example.org/x", "http://plain"]})
    assert masked == {"memory": {"url": "redis://:********@10.0.0.1:6379/0"},
                      "origins": ["https://user:********@example.org/x", "http://plain"]}


def test_validation_messages_never_quote_a_password_inside_a_url(tmp_path) -> None:
    from hotconf.snapshot import evaluate

    config = (b'backend:\n  cors_origins: ["ftp://u:hunter2@host"]\n  llm:\n    ollama:\n'
              b'      host: "http://u:hunter3@"\nmemory: "redis://:hunter4@x"\nui: {}\n'
              b'chat: {}\nlogging: {}\n')
    report = evaluate({"config.yaml": config}, tmp_path, {})
    assert len(report.report) >= 3
    for finding in report.report:
        assert "hunter" not in str(finding) and "hunter" not in str(finding.to_dict())
