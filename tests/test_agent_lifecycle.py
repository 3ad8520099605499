"""The agent process from start to stop: exit codes, signals, switches, log, render, hooks."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from agent_process import (
    BROKEN,
    VALID,
    VALID_2,
    HookLog,
    StartAgent,
    agents_started,
    config_version,
    valid_config_dir,
    wait_for_files,
)
from editor_saves import atomic_replace
from test_agent_hooks import process_alive

pytestmark = pytest.mark.integration

V1, V2 = config_version(VALID), config_version(VALID_2)
SECRET = "hunter2-very-secret"
WITH_SECRET = VALID.replace(b"memory: {}", f"memory:\n  redis:\n    password: {SECRET}".encode())


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return valid_config_dir(tmp_path)


@pytest.fixture
def hook_log(tmp_path: Path) -> HookLog:
    return HookLog(tmp_path)


@pytest.fixture
def start_agent(config_dir: Path) -> Iterator[StartAgent]:
    with agents_started(config_dir) as start:
        yield start


class TestStartAndStop:
    def test_the_log_tells_the_story(self, start_agent: StartAgent, config_dir: Path) -> None:
        agent = start_agent("--debounce", "0")
        agent.wait_for_log("ready:")
        atomic_replace(config_dir / "config.yaml", VALID_2)
        agent.wait_for_version(V2)
        agent.send(signal.SIGTERM)

        assert agent.wait_exit() == 0
        log = agent.log()
        started = agent.wait_for_log("started:")
        assert f"pid={agent.pid}" in started
        assert "watcher=inotify why='available'" in started
        assert f"config_dir={config_dir}" in started
        assert f"reload: version={V1} state=applied" in log
        assert f"reload: version={V2} state=applied duration_ms=" in log
        assert "seen=inotify(config.yaml)" in log
        assert "stopping: signal=SIGTERM" in log
        assert log.splitlines()[-1].endswith(f"stopped: pid={agent.pid}")

    def test_status_says_what_the_controller_reads(
        self, start_agent: StartAgent, config_dir: Path
    ) -> None:
        agent = start_agent("--host-id", "vm3")
        status = agent.wait_for_version(V1)

        assert status["host"] == "vm3"
        assert status["summary"]["critical"] == 0
        assert status["serving"] == V1
        assert status["watcher"] == {"kind": "inotify", "why": "available"}
        assert status["agent_version"]
        assert isinstance(status["ts"], float) and status["time"].startswith("20")

    def test_nothing_valid_and_no_last_good_exits_3(
        self, start_agent: StartAgent, config_dir: Path
    ) -> None:
        (config_dir / "config.yaml").write_bytes(BROKEN)
        agent = start_agent()

        assert agent.wait_exit() == 3
        message = agent.log().splitlines()[-1]
        assert message.startswith("hotconf-agent: cannot start:")
        assert re.search(r"config\.yaml:\d+: config\.yaml is not valid YAML", message)
        assert "no last good configuration" in message

    @pytest.mark.parametrize("make", [os.mkdir, os.mkfifo], ids=["directory", "fifo"])
    def test_a_managed_file_that_cannot_be_read_at_start_exits_3(
        self, start_agent: StartAgent, config_dir: Path, make: Callable[[Path], None]
    ) -> None:
        make(config_dir / "settings.json")
        agent = start_agent()

        assert agent.wait_exit() == 3
        message = agent.log().splitlines()[-1]
        assert message.startswith("hotconf-agent: cannot start:")
        assert "settings.json" in message
        assert "Traceback" not in agent.log()

    def test_with_a_last_good_it_serves_that_and_reports_rejected(
        self, start_agent: StartAgent, config_dir: Path, hook_log: HookLog, tmp_path: Path
    ) -> None:
        rendered = tmp_path / "effective.json"
        first = start_agent("--render", str(rendered))
        first.wait_for_version(V1)
        first.stop()
        (config_dir / "config.yaml").write_bytes(BROKEN)
        rendered.unlink()

        second = start_agent("--render", str(rendered), "--hook", hook_log.command)

        status = second.wait_for_version(config_version(BROKEN), "rejected")
        assert status["serving"] == V1
        assert json.loads(rendered.read_text())["backend"]["server_port"] == 8001
        assert hook_log.entries() == [f"{V1} rejected"]

    def test_sigterm_lets_the_reload_in_progress_finish(
        self, start_agent: StartAgent, config_dir: Path, tmp_path: Path
    ) -> None:
        marker = tmp_path / "hook-started"
        hook = f"sh -c 'test $HOTCONF_VERSION = {V1} || {{ touch {marker}; sleep 0.3; }}'"
        agent = start_agent("--debounce", "0", "--hook", hook)
        agent.wait_for_version(V1)

        atomic_replace(config_dir / "config.yaml", VALID_2)
        wait_for_files([tmp_path], marker.exists)
        agent.send(signal.SIGTERM)

        assert agent.wait_exit() == 0
        status = agent.status()
        assert status is not None and (status["version"], status["state"]) == (V2, "applied")

    def test_sigterm_during_a_hung_hook_exits_0_and_kills_the_hook(
        self, start_agent: StartAgent, config_dir: Path, tmp_path: Path
    ) -> None:
        marker = tmp_path / "hook.pid"
        hook = f"sh -c 'test $HOTCONF_VERSION = {V1} || {{ echo $$ > {marker}; exec sleep 60; }}'"
        agent = start_agent("--debounce", "0", "--hook", hook)
        agent.wait_for_version(V1)

        atomic_replace(config_dir / "config.yaml", VALID_2)
        hook_pid = wait_for_files([tmp_path], lambda: contents(marker))
        agent.send(signal.SIGTERM)

        assert agent.wait_exit() == 0
        assert not process_alive(int(hook_pid))

    def test_a_second_signal_exits_at_once(
        self, start_agent: StartAgent, config_dir: Path, tmp_path: Path
    ) -> None:
        marker = tmp_path / "hook.pid"
        hook = f"sh -c 'test $HOTCONF_VERSION = {V1} || {{ echo $$ > {marker}; exec sleep 60; }}'"
        agent = start_agent("--debounce", "0", "--hook", hook)
        agent.wait_for_version(V1)
        atomic_replace(config_dir / "config.yaml", VALID_2)
        hook_pid = wait_for_files([tmp_path], lambda: contents(marker))

        agent.send(signal.SIGTERM)
        agent.wait_for_log("stopping: signal=SIGTERM")
        agent.send(signal.SIGINT)

        assert agent.wait_exit() == 128 + signal.SIGINT
        assert "second SIGINT, exiting at once" in agent.log()
        assert not process_alive(int(hook_pid))

    def test_sighup_rereads_and_reapplies(self, start_agent: StartAgent, hook_log: HookLog) -> None:
        agent = start_agent("--hook", hook_log.command)
        agent.wait_for_version(V1)

        agent.send(signal.SIGHUP)

        assert hook_log.wait_for_entries(2) == [f"{V1} applied", f"{V1} applied"]
        status = agent.wait_for_status(lambda status: status["summary"]["seen"] == "signal")
        assert status["state"] == "applied"


class TestDeploymentSwitches:
    def test_auto_reload_false_validates_at_start_and_on_sighup_only(
        self, start_agent: StartAgent, config_dir: Path, hook_log: HookLog
    ) -> None:
        agent = start_agent(
            "--debounce", "0", "--hook", hook_log.command,
            env={"AUTOBOT_CONFIG_AUTO_RELOAD": "false"},
        )
        status = agent.wait_for_version(V1)
        assert status["watcher"]["kind"] == "none"

        atomic_replace(config_dir / "config.yaml", VALID_2)
        agent.send(signal.SIGHUP)

        status = agent.wait_for_version(V2)
        assert status["summary"]["seen"] == "signal"
        assert hook_log.entries() == [f"{V1} applied", f"{V2} applied"]
        assert "AUTOBOT_CONFIG_AUTO_RELOAD=false: not watching" in agent.log()

    def test_distributed_reload_false_leaves_redis_out(self, start_agent: StartAgent) -> None:
        agent = start_agent(
            "--redis", "redis://127.0.0.1:9/0",
            env={"AUTOBOT_CONFIG_DISTRIBUTED_RELOAD": "false"},
        )

        status = agent.wait_for_version(V1)
        assert status["bus"] == {"redis": "off"}
        assert "--redis is ignored" in agent.log()

    def test_switches_are_not_reported_as_unknown_keys(self, start_agent: StartAgent) -> None:
        agent = start_agent(env={
            "AUTOBOT_CONFIG_AUTO_RELOAD": "true",
            "AUTOBOT_CONFIG_DISTRIBUTED_RELOAD": "true",
            "AUTOBOT_CONFIG_VALIDATION_ON_STARTUP": "true",
        })

        status = agent.wait_for_version(V1)
        assert status["summary"]["total"] == 0


class TestRenderAndSecrets:
    @pytest.mark.parametrize("name", ["effective.json", "effective.yaml"])
    def test_render_holds_secrets_mode_0600_and_nothing_else_does(
        self, start_agent: StartAgent, config_dir: Path, tmp_path: Path, name: str
    ) -> None:
        (config_dir / "config.yaml").write_bytes(WITH_SECRET)
        rendered = tmp_path / name
        hook = f"sh -c 'echo {SECRET} >&2; false'"
        agent = start_agent("--render", str(rendered), "--hook", hook)

        status = agent.wait_for_version(config_version(WITH_SECRET), "hook_failed")

        loaded = yaml.safe_load(rendered.read_text())  # JSON is YAML too
        assert loaded["memory"]["redis"]["password"] == SECRET
        assert stat.S_IMODE(rendered.stat().st_mode) == 0o600
        assert SECRET not in json.dumps(status)
        assert SECRET not in agent.log()
        assert "********" in status["summary"]["hooks"][0]["stderr_tail"]


class TestHooksInTheAgent:
    def test_a_failing_hook_is_reported_and_the_agent_runs_on(
        self, start_agent: StartAgent, config_dir: Path
    ) -> None:
        agent = start_agent("--debounce", "0", "--hook", "sh -c 'echo reload refused >&2; exit 7'")
        status = agent.wait_for_version(V1, "hook_failed")
        assert status["summary"]["exit_code"] == 7
        assert status["summary"]["hook"].endswith("exited 7: reload refused")

        atomic_replace(config_dir / "config.yaml", VALID_2)
        status = agent.wait_for_version(V2, "hook_failed")
        assert status["serving"] == V2

    def test_a_hook_past_its_timeout(self, start_agent: StartAgent) -> None:
        agent = start_agent("--hook", "sleep 60", "--hook-timeout", "0.3")

        status = agent.wait_for_version(V1, "hook_failed")
        assert status["summary"]["hooks"][0]["timed_out"] is True

    def test_a_missing_hook(self, start_agent: StartAgent) -> None:
        agent = start_agent("--hook", "/nonexistent/reload-autobot")

        status = agent.wait_for_version(V1, "hook_failed")
        assert status["summary"]["exit_code"] == 127

    def test_a_signal_hook_reaches_the_service(
        self, start_agent: StartAgent, config_dir: Path, tmp_path: Path
    ) -> None:
        got = tmp_path / "hups"
        service = subprocess.Popen([
            sys.executable, "-c",
            "import signal\n"
            f"signal.signal(signal.SIGHUP, lambda *_: open({str(got)!r}, 'a').write('HUP\\n'))\n"
            f"open({str(tmp_path / 'ready')!r}, 'w').close()\n"
            "while True:\n    signal.pause()\n",
        ])
        try:
            wait_for_files([tmp_path], lambda: (tmp_path / "ready").exists())
            pidfile = tmp_path / "service.pid"
            pidfile.write_text(f"{service.pid}\n")
            agent = start_agent("--debounce", "0", "--signal", "HUP", "--pidfile", str(pidfile))
            agent.wait_for_version(V1)

            atomic_replace(config_dir / "config.yaml", VALID_2)

            agent.wait_for_version(V2)
            assert wait_for_files([tmp_path], lambda: contents(got) == "HUP\nHUP\n")
        finally:
            service.kill()
            service.wait()

    def test_agent_config_file_with_flags_winning(
        self, start_agent: StartAgent, config_dir: Path, hook_log: HookLog, tmp_path: Path
    ) -> None:
        agent_config = tmp_path / "agent.yaml"
        agent_config.write_text(
            f"config_dir: {config_dir}\nwatcher: inotify\nhost_id: from-file\n"
            f"hooks:\n  - {json.dumps(hook_log.command)}\n"
        )

        agent = start_agent(
            "--agent-config", str(agent_config), "--watcher", "poll", config_flag=False
        )

        status = agent.wait_for_version(V1)
        assert status["host"] == "from-file"
        assert status["watcher"]["kind"] == "poll"
        assert hook_log.entries() == [f"{V1} applied"]

    def test_bad_settings_exit_2_with_one_line(
        self, start_agent: StartAgent, tmp_path: Path
    ) -> None:
        agent = start_agent("--render", str(tmp_path / "effective.txt"))

        assert agent.wait_exit() == 2
        assert agent.log().splitlines() == [
            "hotconf-agent: --render: effective.txt must end in .json, .yaml or .yml "
            "(the extension picks the format)"
        ]


def contents(path: Path) -> str | None:
    """The file's text once it has some, else None."""
    return path.read_text() if path.exists() else None


def test_hook_pid_is_gone_helper_sees_the_living() -> None:
    assert process_alive(os.getpid())
