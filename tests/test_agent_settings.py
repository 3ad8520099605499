"""Agent settings: flags over the agent config file, switches, and clear errors."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from agent.errors import AgentSettingsError
from agent.settings import load_settings

ENV = {"VM_HOSTNAME": "vm1"}


def flags(**given: Any) -> dict[str, Any]:
    return {"config_dir": None, "hooks": [], **given}


class TestSources:
    def test_defaults(self, tmp_path: Path) -> None:
        settings = load_settings(flags(config_dir=tmp_path), environ=ENV)

        assert settings.config_dir == tmp_path
        assert settings.host_id == "vm1"
        assert settings.watcher == "auto"
        assert (settings.debounce, settings.rescan_interval, settings.hook_timeout) == (
            0.5, 30.0, 30.0
        )
        assert settings.redis is None and not settings.uses_redis
        assert settings.auto_reload and settings.distributed_reload

    def test_agent_config_file_and_flags_win(self, tmp_path: Path) -> None:
        agent_config = tmp_path / "agent.yaml"
        agent_config.write_text(
            "config_dir: autobot\n"
            "watcher: poll\n"
            "debounce: 0.2\n"
            "hooks:\n"
            "  - systemctl reload autobot\n"
            "  - [/usr/local/bin/notify, --version, 'with space']\n"
            "render: out/effective.yaml\n"
        )

        settings = load_settings(flags(watcher="inotify"), agent_config=agent_config, environ=ENV)

        assert settings.config_dir == tmp_path / "autobot"
        assert settings.render == tmp_path / "out" / "effective.yaml"
        assert settings.watcher == "inotify"
        assert settings.debounce == 0.2
        assert settings.hooks == (
            ("systemctl", "reload", "autobot"),
            ("/usr/local/bin/notify", "--version", "with space"),
        )

    def test_hook_flags_are_split_like_a_shell_but_run_without_one(self, tmp_path: Path) -> None:
        settings = load_settings(
            flags(config_dir=tmp_path, hooks=["notify --msg 'config changed; ok'"]), environ=ENV
        )

        assert settings.hooks == (("notify", "--msg", "config changed; ok"),)

    def test_host_id_from_flag_then_vm_hostname(self, tmp_path: Path) -> None:
        assert load_settings(flags(config_dir=tmp_path, host_id="main"), environ=ENV).host_id == (
            "main"
        )
        assert load_settings(flags(config_dir=tmp_path), environ={}).host_id  # the hostname

    def test_signal_hook(self, tmp_path: Path) -> None:
        settings = load_settings(
            flags(config_dir=tmp_path, signal="hup", pidfile=tmp_path / "svc.pid"), environ=ENV
        )

        assert settings.signal is signal.SIGHUP


class TestSwitches:
    def test_auto_reload_false(self, tmp_path: Path) -> None:
        settings = load_settings(
            flags(config_dir=tmp_path), environ={**ENV, "AUTOBOT_CONFIG_AUTO_RELOAD": "false"}
        )

        assert not settings.auto_reload
        assert any("not watching" in note for note in settings.notes)

    def test_distributed_reload_false_turns_redis_off(self, tmp_path: Path) -> None:
        settings = load_settings(
            flags(config_dir=tmp_path, redis="redis://127.0.0.1:6379/0"),
            environ={**ENV, "AUTOBOT_CONFIG_DISTRIBUTED_RELOAD": "no"},
        )

        assert not settings.uses_redis
        assert any("--redis is ignored" in note for note in settings.notes)

    def test_a_switch_that_is_not_a_boolean(self, tmp_path: Path) -> None:
        with pytest.raises(AgentSettingsError, match="AUTOBOT_CONFIG_AUTO_RELOAD='maybe'"):
            load_settings(
                flags(config_dir=tmp_path), environ={**ENV, "AUTOBOT_CONFIG_AUTO_RELOAD": "maybe"}
            )


class TestErrors:
    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ({"watcher": "fanotify"}, "--watcher: 'fanotify' is not a watcher"),
            ({"debounce": -1.0}, "--debounce: -1.0 must be 0 or more seconds"),
            ({"poll_interval": 0.0}, "--poll-interval: 0.0 must be above 0 seconds"),
            ({"render": Path("out.txt")}, "out.txt must end in .json, .yaml or .yml"),
            ({"signal": "BOGUS", "pidfile": Path("x")}, "'BOGUS' is not a signal name"),
            ({"signal": "HUP"}, "--signal and --pidfile go together"),
            ({"hooks": ["''"]}, "empty hook command"),
            ({"hooks": [["/bin/true", "a\0b"]]}, "a hook argument holds a NUL byte"),
            ({"host_id": "has space"}, "is not a host id"),
            ({"redis": "127.0.0.1:6379"}, "--redis: not a Redis URL; use redis://HOST:PORT/DB"),
            ({"redis": "http://127.0.0.1:6379"}, "--redis: not a Redis URL"),
            ({"redis": "redis://:pw@127.0.0.1:99999"}, "--redis: the port is not a number"),
            ({"redis": "redis://:pw@127.0.0.1:port"}, "--redis: the port is not a number"),
        ],
    )
    def test_bad_flags_say_which_and_why(
        self, tmp_path: Path, given: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(AgentSettingsError) as raised:
            load_settings(flags(config_dir=tmp_path, **given), environ=ENV)

        assert message in str(raised.value)
        assert ":pw@" not in str(raised.value)

    @pytest.mark.parametrize(
        "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache.example:6380", "redis://",
                "unix:///run/redis/redis.sock?db=1"],
    )
    def test_redis_urls_the_client_takes(self, tmp_path: Path, url: str) -> None:
        assert load_settings(flags(config_dir=tmp_path, redis=url), environ=ENV).redis == url

    def test_no_config_dir(self) -> None:
        with pytest.raises(AgentSettingsError, match="give --config-dir DIR"):
            load_settings(flags(), environ=ENV)

    def test_unknown_key_in_agent_config_names_file_and_key(self, tmp_path: Path) -> None:
        agent_config = tmp_path / "agent.yaml"
        agent_config.write_text("config_dir: /etc/autobot\ndebounse: 1\n")

        with pytest.raises(AgentSettingsError) as raised:
            load_settings(flags(), agent_config=agent_config, environ=ENV)

        assert f"{agent_config}: debounse: unknown setting; did you mean debounce?" in str(
            raised.value
        )

    def test_bad_value_in_agent_config_names_file_and_key(self, tmp_path: Path) -> None:
        agent_config = tmp_path / "agent.yaml"
        agent_config.write_text("config_dir: /etc/autobot\nhook_timeout: soon\n")

        with pytest.raises(AgentSettingsError) as raised:
            load_settings(flags(), agent_config=agent_config, environ=ENV)

        assert f"{agent_config}: hook_timeout: 'soon' is not a number of seconds" in str(
            raised.value
        )

    def test_agent_config_that_is_not_yaml(self, tmp_path: Path) -> None:
        agent_config = tmp_path / "agent.yaml"
        agent_config.write_text("config_dir: [\n")

        with pytest.raises(AgentSettingsError, match=r"agent.yaml:2: not valid YAML"):
            load_settings(flags(), agent_config=agent_config, environ=ENV)


class TestDeployExamples:
    def test_the_example_agent_config_loads(self) -> None:
        example = Path(__file__).resolve().parent.parent / "deploy" / "agent.yaml"

        settings = load_settings(flags(), agent_config=example, environ=ENV)

        assert settings.config_dir == Path("/etc/autobot")
        assert settings.hooks == (("systemctl", "reload", "autobot-backend"),)

    def test_the_unit_runs_the_agent_with_that_file(self) -> None:
        unit = (Path(__file__).resolve().parent.parent / "deploy" / "hotconf-agent.service")
        lines = unit.read_text().splitlines()

        exec_start = next(line for line in lines if line.startswith("ExecStart="))
        assert exec_start.endswith("hotconf-agent run --agent-config /etc/hotconf/agent.yaml")
        assert "RestartPreventExitStatus=2 3" in lines
        assert "ExecReload=/bin/kill -HUP $MAINPID" in lines
