"""Server processes for tests: started, awaited by their own log line, stopped by pid.

A ``LoggedProcess`` runs one program with stdout and stderr merged into a pipe. A
thread copies that pipe into a log file and sets an event when a line says the
server is ready, or when the output ends because the program died. Waiting for
readiness is waiting on that event, with a deadline: no polling, no fixed sleep.

Stopping signals the process and every descendant found in /proc (sshd's
per-connection children live in their own sessions, so a signal to the listener
alone leaves them running), all by pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from .ports import free_port

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 5


class ServerStartError(RuntimeError):
    """A test server did not become ready; the message carries its last log lines."""


class LoggedProcess:
    """One server program whose output goes to ``log_path``; see the module docstring."""

    def __init__(self, argv: Sequence[str], log_path: Path, ready_line: re.Pattern[str]) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.ready_line = ready_line
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._ready = threading.Event()
        self._saw_ready_line = False

    @property
    def pid(self) -> int | None:
        """The pid while the process runs, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Start the program and return at once; ``wait_ready`` waits for it."""
        if self.running:
            raise RuntimeError(f"{self.argv[0]} is already running (pid {self.pid})")
        self._ready.clear()
        self._saw_ready_line = False
        self._process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._drain = threading.Thread(
            target=self._copy_output, args=(self._process,), name=f"log {self.argv[0]}",
            daemon=True,
        )
        self._drain.start()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Block until the ready line appears; raise ``ServerStartError`` if it never does."""
        self._ready.wait(timeout)
        if self._saw_ready_line and self.running:
            return
        exit_code = self._process.poll() if self._process else None
        self.kill()
        why = f"exited with code {exit_code}" if exit_code is not None else (
            f"printed no line matching {self.ready_line.pattern!r} within {timeout:g} s"
        )
        raise ServerStartError(f"{' '.join(self.argv)} {why}; its log:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the process and its descendants, SIGKILL what is left after ``timeout``."""
        self._signal_tree(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL the process and its descendants at once, as a crash would."""
        self._signal_tree(signal.SIGKILL, STOP_TIMEOUT_S)

    def descendant_pids(self) -> list[int]:
        """The pids of every living descendant (children first), read from /proc."""
        pid = self.pid
        return descendants(pid) if pid is not None else []

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal_tree(self, signum: int, timeout: float) -> None:
        process = self._process
        if process is None:
            return

        # Collect the descendants first: once the parent is gone they are re-parented
        # and can no longer be found through it. A process already reaped is not
        # signalled: its pid may belong to someone else by now.
        if process.poll() is None:
            children = descendants(process.pid)
            for pid in [process.pid, *children]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        else:
            children = []

        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
        for pid in children:
            _wait_gone(pid, timeout)
        if self._drain is not None:
            self._drain.join(timeout)
        if process.stdout is not None:
            process.stdout.close()
        self._process = None

    def _copy_output(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in process.stdout:
                log.write(raw)
                log.flush()
                if not self._saw_ready_line and self.ready_line.search(
                    raw.decode(errors="replace")
                ):
                    self._saw_ready_line = True
                    self._ready.set()
        # End of output: the program died (or was stopped); wake any waiter.
        self._ready.set()


class PortServer:
    """A server program on one loopback port: started, awaited, stopped by pid.

    A subclass says how to launch the program on ``self.port`` (``_launch``), which
    log text means the port was taken (``bind_failed``), and how to confirm it serves
    (``_confirm``). A port taken between ``free_port`` and the bind is swapped for a
    fresh one; once the server has run, restarts keep its port.
    """

    bind_failed: re.Pattern[str]

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._fixed_port = port is not None
        self._process: LoggedProcess | None = None

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Start the server and wait until it serves."""
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the server without waiting; ``wait_ready`` waits (servers start in parallel)."""
        self._process = self._launch()

    def wait_ready(self) -> None:
        """Wait for the server's ready line, retrying on a fresh port when its port was taken."""
        for attempt in range(PORT_ATTEMPTS):
            assert self._process is not None, "spawn() first"
            try:
                self._process.wait_ready(START_TIMEOUT_S)
            except ServerStartError as exc:
                lost_the_port = self.bind_failed.search(str(exc)) is not None
                if self._fixed_port or not lost_the_port or attempt == PORT_ATTEMPTS - 1:
                    raise
                self.port = free_port()
                self.spawn()
                continue
            break
        self._confirm()
        # From here on a restart must come back on this port: clients were told it.
        self._fixed_port = True

    def stop(self) -> None:
        """SIGTERM the server and its descendants; wait until they are gone."""
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """SIGKILL the server and its descendants at once, as a crash would."""
        if self._process is not None:
            self._process.kill()

    def restart(self) -> None:
        """Stop if running, then start again on the same port."""
        self.stop()
        self.start()

    def _launch(self) -> LoggedProcess:
        raise NotImplementedError

    def _confirm(self) -> None:
        """Check the server really answers, beyond its log line."""


def descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid``, found through the parent links in /proc."""
    children_of: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        parent = _parent_pid(int(entry))
        if parent is not None:
            children_of.setdefault(parent, []).append(int(entry))

    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children_of.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _parent_pid(pid: int) -> int | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields after its last ")"
    # are fixed: state, then the parent pid.
    fields = stat_line.rsplit(")", 1)[1].split()
    return int(fields[1])


def _wait_gone(pid: int, timeout: float) -> None:
    # A descendant is not our child, so it cannot be waited for; a pidfd can.
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
