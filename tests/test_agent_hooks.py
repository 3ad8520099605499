"""Reload hooks run as real processes: success, failure, hang, missing, signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_process import wait_for_files

from agent.hooks import CommandHook, HookResult, SignalHook, run_hooks
from agent.reload import redact

CONFIG_DIR = Path("/etc/autobot")


async def run_one(
    hook: CommandHook | SignalHook, redact: Callable[[str], str] = lambda text: text
) -> list[HookResult]:
    return await run_hooks(
        [hook], version="0123456789ab", config_dir=CONFIG_DIR, state="applied", redact=redact
    )


class TestCommandHooks:
    async def test_environment_names_version_directory_and_state(self, tmp_path: Path) -> None:
        seen = tmp_path / "env"
        script = f'echo "$HOTCONF_VERSION|$HOTCONF_CONFIG_DIR|$HOTCONF_STATE" > {seen}'
        [result] = await run_one(CommandHook(("sh", "-c", script), timeout=10))

        assert result.ok
        assert seen.read_text() == "0123456789ab|/etc/autobot|applied\n"

    async def test_no_shell_interprets_the_arguments(self, tmp_path: Path) -> None:
        seen = tmp_path / "argv"
        program = f"import sys; open({str(seen)!r}, 'w').write(repr(sys.argv[1:]))"
        hook = CommandHook((sys.executable, "-c", program, "$HOME", "a;b", "*"), timeout=10)
        [result] = await run_one(hook)

        assert result.ok
        assert seen.read_text() == "['$HOME', 'a;b', '*']"

    async def test_failure_carries_exit_code_and_stderr_tail(self) -> None:
        script = "echo first line >&2; echo 'unit autobot not loaded' >&2; exit 4"
        [result] = await run_one(CommandHook(("sh", "-c", script), timeout=10))

        assert not result.ok
        assert result.exit_code == 4
        assert result.stderr_tail == "first line\nunit autobot not loaded\n"
        assert result.describe().endswith("exited 4: unit autobot not loaded")

    async def test_stderr_tail_keeps_only_the_end(self) -> None:
        script = "import sys; sys.stderr.write('x' * 100000 + 'THE END'); sys.exit(1)"
        [result] = await run_one(CommandHook((sys.executable, "-c", script), timeout=10))

        assert result.stderr_tail.endswith("THE END")
        assert len(result.stderr_tail) == 2048

    async def test_a_hang_is_killed_at_the_timeout_with_its_children(self, tmp_path: Path) -> None:
        marker = tmp_path / "child.pid"
        script = f"sleep 60 & echo $! > {marker}; wait"
        [result] = await run_one(CommandHook(("sh", "-c", script), timeout=0.5))

        assert not result.ok
        assert result.timed_out
        assert "no exit within 0.5 s" in result.describe()
        child = int(marker.read_text())
        assert not process_alive(child)

    async def test_a_missing_program_is_a_failure_not_a_crash(self) -> None:
        [result] = await run_one(CommandHook(("/nonexistent/reload-autobot",), timeout=10))

        assert not result.ok
        assert result.exit_code == 127
        assert "/nonexistent/reload-autobot not found" in result.error

    async def test_a_file_that_is_not_executable(self, tmp_path: Path) -> None:
        script = tmp_path / "reload.sh"
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o644)
        if os.access(script, os.X_OK):
            pytest.skip("running as a user that may execute anything")
        [result] = await run_one(CommandHook((str(script),), timeout=10))

        assert result.exit_code == 126
        assert "chmod +x" in result.error

    async def test_every_hook_runs_even_after_one_fails(self, tmp_path: Path) -> None:
        marker = tmp_path / "second-ran"
        results = await run_hooks(
            [CommandHook(("false",), timeout=10), CommandHook(("touch", str(marker)), timeout=10)],
            version="0123456789ab", config_dir=CONFIG_DIR, state="applied",
        )

        assert [result.ok for result in results] == [False, True]
        assert marker.exists()

    async def test_secret_values_are_scrubbed_from_what_a_hook_printed(self) -> None:
        tree = {"memory": {"redis": {"password": "hunter2-secret"}}, "ui": {"theme": "dark"}}
        script = "echo 'auth failed with hunter2-secret for theme dark' >&2; exit 1"
        [result] = await run_one(
            CommandHook(("sh", "-c", script), timeout=10), redact=lambda text: redact(text, tree)
        )

        assert "hunter2-secret" not in result.stderr_tail
        assert result.stderr_tail == "auth failed with ******** for theme dark\n"

    async def test_passwords_inside_urls_are_scrubbed_too(self) -> None:
        tree = {"backend": {"llm": {"ollama": {"host": "http://bot:ollama-pw@127.0.0.1:11434"}}}}
        script = (
            "echo 'cannot reach http://bot:ollama-pw@127.0.0.1:11434 (ollama-pw refused)' >&2;"
            "echo 'and redis://:other-pw@127.0.0.1:6379/0 from the environment' >&2; exit 1"
        )
        [result] = await run_one(
            CommandHook(("sh", "-c", script), timeout=10), redact=lambda text: redact(text, tree)
        )

        assert "ollama-pw" not in result.stderr_tail
        assert "other-pw" not in result.stderr_tail
        assert "http://bot:********@127.0.0.1:11434 (******** refused)" in result.stderr_tail
        assert "redis://:********@127.0.0.1:6379/0" in result.stderr_tail


class TestSignalHook:
    async def test_signals_the_pid_in_the_pidfile(self, tmp_path: Path) -> None:
        got = tmp_path / "got-hup"
        service = subprocess.Popen([
            sys.executable, "-c",
            "import signal, sys, time\n"
            f"signal.signal(signal.SIGHUP, lambda *_: open({str(got)!r}, 'w').write('HUP'))\n"
            f"open({str(tmp_path / 'ready')!r}, 'w').close()\n"
            "signal.pause()\n",
        ])
        try:
            wait_for_files([tmp_path], lambda: (tmp_path / "ready").exists())
            pidfile = tmp_path / "service.pid"
            pidfile.write_text(f"{service.pid}\n")

            [result] = await run_one(SignalHook(signal.SIGHUP, pidfile))

            assert result.ok
            assert wait_for_files([tmp_path], lambda: got.exists() and got.read_text() == "HUP")
        finally:
            service.kill()
            service.wait()

    @pytest.mark.parametrize(
        ("content", "expected"),
        [(None, "cannot be read"), ("not-a-pid", "holds no pid"), ("1", "refusing")],
    )
    async def test_a_bad_pidfile_is_a_failure(
        self, tmp_path: Path, content: str | None, expected: str
    ) -> None:
        pidfile = tmp_path / "service.pid"
        if content is not None:
            pidfile.write_text(content)

        [result] = await run_one(SignalHook(signal.SIGHUP, pidfile))

        assert not result.ok
        assert expected in result.error

    async def test_a_stale_pidfile_is_a_failure(self, tmp_path: Path) -> None:
        gone = subprocess.Popen(["true"])
        gone.wait()
        pidfile = tmp_path / "service.pid"
        pidfile.write_text(str(gone.pid))

        [result] = await run_one(SignalHook(signal.SIGHUP, pidfile))

        assert not result.ok
        assert "stale pidfile" in result.error


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
