"""Config, the entry point for services: the startup gate, reload and change callbacks."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from foundation_helpers import EXAMPLE_DIR, MINIMAL_CONFIG, clean_environment, write_config_dir

from hotconf import Config, ConfigRejected, HotconfError
from hotconf.findings import Level
from hotconf.snapshot import Snapshot

BROKEN_CONFIG = "backend: [unclosed\n"


class Recorder:
    """A change callback that keeps what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[Snapshot, Snapshot]] = []

    def __call__(self, old: Snapshot, new: Snapshot) -> None:
        self.calls.append((old, new))


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return write_config_dir(tmp_path / "autobot")


# --- startup ---------------------------------------------------------------------------


def test_load_serves_values_version_and_report(config_dir: Path) -> None:
    config = Config.load(config_dir, {})

    assert config.get("backend.server_port") == 8001
    assert config.get("backend.llm.provider") == "ollama"
    assert config.get("security.jwt_secret") is None
    assert config.get("security.jwt_secret", "unset") == "unset"
    assert len(config.version) == 12
    assert config.report.summary()["total"] == 0
    assert config.snapshot.version == config.version


def test_load_accepts_a_string_path_and_the_example() -> None:
    config = Config.load(str(EXAMPLE_DIR), {})

    assert config.get("chat.max_messages") == 200


def test_load_applies_the_given_environment_and_prefix(config_dir: Path) -> None:
    config = Config.load(config_dir, {"MYBOT_BACKEND_PORT": "9000",
                                      "AUTOBOT_BACKEND_PORT": "9100"}, prefix="MYBOT")

    assert config.get("backend.server_port") == 9000


def test_load_reads_os_environ_by_default(config_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)
    monkeypatch.setenv("AUTOBOT__UI__THEME", "dark")

    assert Config.load(config_dir).get("ui.theme") == "dark"


def test_startup_refuses_a_critical_config_with_its_findings(config_dir: Path) -> None:
    write_config_dir(config_dir, "ui: {}\n")

    with pytest.raises(ConfigRejected) as raised:
        Config.load(config_dir, {})

    error = raised.value
    assert isinstance(error, HotconfError)
    assert error.exit_code == 3
    assert [finding.path for finding in error.findings] == ["backend", "memory", "chat",
                                                            "logging"]
    assert all(finding.level is Level.CRITICAL for finding in error.findings)
    assert str(config_dir) in str(error)
    assert "4 CRITICAL" in str(error)
    assert f"hotconf validate --config-dir {config_dir}" in str(error)


def test_startup_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigRejected) as raised:
        Config.load(tmp_path / "nowhere", {})

    [finding] = raised.value.findings
    assert "does not exist" in finding.message


def test_startup_refusal_shows_five_findings_and_counts_the_rest(config_dir: Path) -> None:
    write_config_dir(config_dir, "security: {}\n", "{")

    with pytest.raises(ConfigRejected) as raised:
        Config.load(config_dir, {})

    assert len(raised.value.findings) == 6
    assert "(and 1 more)" in str(raised.value)


def test_startup_accepts_errors_and_logs_them_without_secrets(
        config_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hotconf")
    config_text = MINIMAL_CONFIG.replace("server_port: 8001", "server_port: 70000") \
        + "security:\n  jwt_secret: [not-a-string-s3cret]\n"
    write_config_dir(config_dir, config_text)

    config = Config.load(config_dir, {"AUTOBOT_REDIS_PASSWORD": "env-s3cret"})

    assert config.report.summary()["errors"] == 2
    assert config.get("backend.server_port") == 70000
    messages = [record.getMessage() for record in caplog.records]
    assert any("configuration loaded" in line and "errors=2" in line for line in messages)
    assert sum("configuration error" in line for line in messages) == 2
    assert "s3cret" not in caplog.text


# --- reload ----------------------------------------------------------------------------


def test_reload_applies_a_changed_file_and_calls_back(config_dir: Path) -> None:
    config = Config.load(config_dir, {})
    recorder = Recorder()
    config.on_change(recorder)
    before = config.version

    write_config_dir(config_dir, MINIMAL_CONFIG.replace("8001", "8002"))
    result = config.reload()

    assert result.state == "applied"
    assert result.version == config.version != before
    assert config.get("backend.server_port") == 8002
    [(old, new)] = recorder.calls
    assert old.get("backend.server_port") == 8001
    assert new.get("backend.server_port") == 8002
    assert new is config.snapshot


def test_reload_of_the_same_files_is_unchanged_and_quiet(config_dir: Path) -> None:
    config = Config.load(config_dir, {})
    recorder = Recorder()
    config.on_change(recorder)

    result = config.reload()

    assert (result.state, result.version) == ("unchanged", config.version)
    assert recorder.calls == []


def test_reload_rejects_critical_and_keeps_the_last_good(
        config_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = Config.load(config_dir, {})
    recorder = Recorder()
    config.on_change(recorder)
    good_version = config.version

    write_config_dir(config_dir, BROKEN_CONFIG)
    result = config.reload()

    assert result.state == "rejected"
    assert result.version != good_version
    assert result.report.critical
    assert config.version == good_version
    assert config.get("backend.server_port") == 8001
    assert not config.report.critical
    assert recorder.calls == []
    assert any(record.levelno == logging.ERROR and "reload rejected" in record.getMessage()
               and f"keeping version={good_version}" in record.getMessage()
               for record in caplog.records)


def test_reload_recovers_once_the_files_are_fixed(config_dir: Path) -> None:
    config = Config.load(config_dir, {})
    recorder = Recorder()
    config.on_change(recorder)
    write_config_dir(config_dir, BROKEN_CONFIG)
    config.reload()

    write_config_dir(config_dir, MINIMAL_CONFIG.replace("theme: auto", "theme: dark"))
    result = config.reload()

    assert result.state == "applied"
    assert config.get("ui.theme") == "dark"
    [(old, _new)] = recorder.calls
    assert old.get("ui.theme") == "auto"


def test_reload_sees_settings_json_appear_and_disappear(config_dir: Path) -> None:
    config = Config.load(config_dir, {})

    write_config_dir(config_dir, MINIMAL_CONFIG, '{"ui": {"theme": "light"}}')
    appeared = config.reload()
    theme_with_settings = config.get("ui.theme")
    (config_dir / "settings.json").unlink()
    disappeared = config.reload()

    assert (appeared.state, theme_with_settings) == ("applied", "light")
    assert (disappeared.state, config.get("ui.theme")) == ("applied", "auto")


def test_reload_applies_a_changed_environment(config_dir: Path) -> None:
    environ = {"AUTOBOT_BACKEND_PORT": "9000"}
    config = Config.load(config_dir, environ)
    recorder = Recorder()
    config.on_change(recorder)

    environ["AUTOBOT_BACKEND_PORT"] = "9001"
    result = config.reload()

    assert result.state == "applied"
    assert config.get("backend.server_port") == 9001
    assert len(recorder.calls) == 1


def test_reload_with_errors_is_still_applied(config_dir: Path) -> None:
    config = Config.load(config_dir, {})

    write_config_dir(config_dir, MINIMAL_CONFIG.replace("server_port: 8001",
                                                        "server_port: 70000"))
    result = config.reload()

    assert result.state == "applied"
    assert result.report.worst is Level.ERROR


# --- callbacks -------------------------------------------------------------------------


def test_unsubscribe_stops_the_calls(config_dir: Path) -> None:
    config = Config.load(config_dir, {})
    kept, dropped = Recorder(), Recorder()
    config.on_change(kept)
    unsubscribe = config.on_change(dropped)

    unsubscribe()
    write_config_dir(config_dir, MINIMAL_CONFIG.replace("8001", "8003"))
    config.reload()

    assert len(kept.calls) == 1
    assert dropped.calls == []


def test_failing_callback_does_not_stop_the_others_or_the_change(
        config_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = Config.load(config_dir, {})

    def broken(_old: Snapshot, _new: Snapshot) -> None:
        raise RuntimeError("callback bug")

    after = Recorder()
    config.on_change(broken)
    config.on_change(after)

    write_config_dir(config_dir, MINIMAL_CONFIG.replace("8001", "8004"))
    result = config.reload()

    assert result.state == "applied"
    assert config.get("backend.server_port") == 8004
    assert len(after.calls) == 1
    assert any("change callback" in record.getMessage() and record.exc_info
               for record in caplog.records)


def test_callback_may_unsubscribe_itself_while_being_called(config_dir: Path) -> None:
    config = Config.load(config_dir, {})
    calls: list[str] = []
    unsubscribe_holder: list[object] = []

    def once(_old: Snapshot, _new: Snapshot) -> None:
        calls.append("once")
        unsubscribe = unsubscribe_holder[0]
        assert callable(unsubscribe)
        unsubscribe()

    unsubscribe_holder.append(config.on_change(once))
    second = Recorder()
    config.on_change(second)

    for port in ("8005", "8006"):
        write_config_dir(config_dir, MINIMAL_CONFIG.replace("8001", port))
        config.reload()

    assert calls == ["once"]
    assert len(second.calls) == 2


def test_example_copy_reloads_a_settings_change(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_DIR, tmp_path / "autobot")
    config = Config.load(tmp_path / "autobot", {})
    settings = tmp_path / "autobot" / "settings.json"

    settings.write_text(settings.read_text().replace('"theme": "dark"', '"theme": "light"'))
    result = config.reload()

    assert result.state == "applied"
    assert config.get("ui.theme") == "light"
