"""A real ``hotconf-agent`` process for the tests, and waiting on what it writes.

Nothing here sleeps for a fixed time: waits re-check their condition whenever
inotify says a file in the directory concerned was written or renamed, or whenever
the agent logs a line, and give up at a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from inotify_simple import INotify, flags

from hotconf.version import content_version

T = TypeVar("T")
DEADLINE = 15.0
REPOSITORY = Path(__file__).resolve().parent.parent

VALID = b"backend:\n  server_port: 8001\nmemory: {}\nui: {}\nchat: {}\nlogging: {}\n"
VALID_2 = b"backend:\n  server_port: 8002\nmemory: {}\nui: {}\nchat: {}\nlogging: {}\n"
VALID_3 = b"backend:\n  server_port: 8003\nmemory: {}\nui: {}\nchat: {}\nlogging: {}\n"
BROKEN = b"backend: [\n  server_port: 8001\n"
SETTINGS = b'{"ui": {"theme": "dark"}}\n'

# A directory's own removal wakes the wait too, so it can watch the one above.
_CHANGES = (flags.CLOSE_WRITE | flags.MOVED_TO | flags.CREATE | flags.DELETE | flags.MOVED_FROM
            | flags.DELETE_SELF | flags.MOVE_SELF)


def config_version(config: bytes = VALID, settings: bytes | None = None) -> str:
    files = {"config.yaml": config}
    if settings is not None:
        files["settings.json"] = settings
    return content_version(files)


def valid_config(port: int) -> bytes:
    return VALID.replace(b"8001", str(port).encode())


def wait_for_files(
    directories: Sequence[Path], check: Callable[[], T | None], *, timeout: float = DEADLINE
) -> T:
    """Return ``check()``'s first truthy result, re-checking on every change in
    the first of ``directories`` that exists (they are tried in order)."""
    deadline = time.monotonic() + timeout
    with INotify() as inotify:
        while True:
            for directory in directories:
                try:
                    inotify.add_watch(directory, _CHANGES)
                    break
                except (FileNotFoundError, NotADirectoryError):
                    continue
            result = check()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {timeout:g} s: {check}")
            inotify.read(timeout=int(remaining * 1000) + 1)


class AgentProcess:
    """``python -m agent run --config-dir DIR ...`` with its log collected line by line."""

    def __init__(
        self,
        config_dir: Path,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        config_flag: bool = True,
    ) -> None:
        self.config_dir = config_dir
        command = [sys.executable, "-m", "agent", "run"]
        if config_flag:
            command += ["--config-dir", str(config_dir)]
        environ = {key: value for key, value in os.environ.items()
                   if not key.startswith(("AUTOBOT", "VM_HOSTNAME"))}
        environ.update({"VM_HOSTNAME": "vm-test", "PYTHONUNBUFFERED": "1"})
        environ.update(env or {})
        self.process = subprocess.Popen(
            [*command, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
            cwd=REPOSITORY,
        )
        self.lines: list[str] = []
        self._logged = threading.Condition()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def status_path(self) -> Path:
        return self.config_dir / ".hotconf" / "status.json"

    def log(self) -> str:
        with self._logged:
            return "\n".join(self.lines)

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = DEADLINE) -> str:
        """Wait until ``text`` appears in ``count`` log lines; return the last of them."""
        def found() -> list[str]:
            return [line for line in self.lines if text in line]

        with self._logged:
            ended = self._logged.wait_for(
                lambda: len(found()) >= count or self.process.poll() is not None, timeout
            )
            matches = found()
        if len(matches) < count:
            state = "exited" if ended else "still running"
            raise AssertionError(f"agent log has no {text!r} (x{count}); agent {state}:\n"
                                 + self.log())
        return matches[count - 1]

    def status(self) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return None
        return loaded

    def wait_for_status(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = DEADLINE
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.status()
            if status is not None and predicate(status):
                return status
            if self.process.poll() is not None:
                raise AssertionError(f"agent exited {self.process.returncode}:\n{self.log()}")
            return None

        return wait_for_files(
            [self.status_path.parent, self.config_dir, self.config_dir.parent], check,
            timeout=timeout,
        )

    def wait_for_version(self, version: str, state: str = "applied") -> dict[str, Any]:
        return self.wait_for_status(
            lambda status: status["version"] == version and status["state"] == state
        )

    def send(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = DEADLINE) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def stop(self) -> None:
        """Stop it by its pid: SIGTERM, then SIGKILL past the deadline; close its pipe."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(DEADLINE)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._logged:
                self.lines.append(line.rstrip("\n"))
                self._logged.notify_all()
        with self._logged:
            self._logged.notify_all()


class HookLog:
    """A hook that appends ``$HOTCONF_VERSION $HOTCONF_STATE`` to a file per run."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "hook.log"
        self.path.touch()

    @property
    def command(self) -> str:
        return f"sh -c 'echo \"$HOTCONF_VERSION $HOTCONF_STATE\" >> {self.path}'"

    def entries(self) -> list[str]:
        return self.path.read_text().splitlines()

    def wait_for_entries(self, count: int) -> list[str]:
        return wait_for_files(
            [self.path.parent],
            lambda: self.entries() if len(self.entries()) >= count else None,
        )


StartAgent = Callable[..., AgentProcess]


def valid_config_dir(parent: Path) -> Path:
    """``parent/autobot`` holding a valid config.yaml, so an agent has something to serve."""
    directory = parent / "autobot"
    directory.mkdir()
    (directory / "config.yaml").write_bytes(VALID)
    return directory


@contextmanager
def agents_started(config_dir: Path) -> Iterator[StartAgent]:
    """``start(*args, env=, config_flag=, directory=)`` runs an agent; all stop on exit."""
    started: list[AgentProcess] = []

    def start(*args: str, env: Mapping[str, str] | None = None, config_flag: bool = True,
              directory: Path | None = None) -> AgentProcess:
        agent = AgentProcess(directory or config_dir, args, env=env, config_flag=config_flag)
        started.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in started:
            agent.stop()
