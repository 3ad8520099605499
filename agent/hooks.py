"""Reload hooks: tell the service that a new configuration is in place.

A command hook is an argv list run without a shell, in its own process group, with
``HOTCONF_VERSION``, ``HOTCONF_CONFIG_DIR`` and ``HOTCONF_STATE`` added to the agent's
environment, under a timeout; a hook past its timeout is killed with its whole group.
A signal hook sends a signal to the pid in a pidfile instead (``--signal HUP
--pidfile FILE``), for a service that reloads on a signal.

A hook never raises: whatever goes wrong (exit status, timeout, missing program,
stale pidfile) comes back as a ``HookResult`` the report carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 2048
# After a hook exits, a grandchild it left behind may still hold its stderr open.
STDERR_DRAIN_SECONDS = 0.5
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126

# Every running hook's process group, so a forced exit can take them down too.
running_groups: set[int] = set()


@dataclass(frozen=True, slots=True)
class HookResult:
    """What one hook did."""

    hook: str
    ok: bool
    exit_code: int | None = None
    stderr_tail: str = ""
    timed_out: bool = False
    error: str = ""
    duration_ms: float = 0.0

    def describe(self) -> str:
        """One line for the log and the report: ``reload-svc exited 2: no such unit``."""
        if self.ok:
            return f"{self.hook} ok"
        lines = self.stderr_tail.strip().splitlines()
        detail = self.error or (lines[-1] if lines else "")
        return f"{self.hook} {self._verdict()}" + (f": {detail}" if detail else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "error": self.error,
            "stderr_tail": self.stderr_tail,
            "duration_ms": round(self.duration_ms, 1),
        }

    def _verdict(self) -> str:
        if self.timed_out:
            return "timed out and was killed"
        if self.exit_code is not None and self.exit_code < 0:
            return f"was killed by signal {-self.exit_code}"
        return f"exited {self.exit_code}" if self.exit_code is not None else "failed"


@dataclass(frozen=True, slots=True)
class CommandHook:
    """Run ``argv`` (no shell); it fails on a non-zero exit or past ``timeout``."""

    argv: tuple[str, ...]
    timeout: float

    @property
    def name(self) -> str:
        return " ".join(self.argv)

    async def run(self, environ: Mapping[str, str]) -> HookResult:
        started = time.perf_counter()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=dict(environ),
                start_new_session=True,
            )
        except OSError as exc:
            return self._not_started(exc, started)

        running_groups.add(process.pid)
        try:
            return await self._supervise(process, started)
        finally:
            # Cancelled because the agent is stopping: leave no hook behind.
            if process.returncode is None:
                _kill_group(process.pid)
            running_groups.discard(process.pid)

    async def _supervise(self, process: asyncio.subprocess.Process, started: float) -> HookResult:
        tail = bytearray()
        reader = asyncio.create_task(_read_tail(process.stderr, tail))
        timed_out = False
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await process.wait()
            except TimeoutError:
                timed_out = True
                _kill_group(process.pid)
                await process.wait()

            # Give the pipe a moment to drain, without waiting on a lingering grandchild.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STDERR_DRAIN_SECONDS):
                    await asyncio.shield(reader)
        finally:
            reader.cancel()

        code = process.returncode
        return HookResult(
            hook=self.name,
            ok=code == 0 and not timed_out,
            exit_code=code,
            stderr_tail=tail.decode("utf-8", "replace"),
            timed_out=timed_out,
            error=f"no exit within {self.timeout:g} s" if timed_out else "",
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def _not_started(self, exc: OSError, started: float) -> HookResult:
        program = self.argv[0]
        if isinstance(exc, FileNotFoundError):
            code, error = EXIT_NOT_FOUND, f"{program} not found: give its full path, or install it"
        elif isinstance(exc, PermissionError):
            code, error = EXIT_NOT_EXECUTABLE, f"{program} is not executable: chmod +x {program}"
        else:
            code, error = EXIT_NOT_EXECUTABLE, f"{program} could not start: {exc.strerror}"
        return HookResult(
            self.name, ok=False, exit_code=code, error=error,
            duration_ms=(time.perf_counter() - started) * 1000,
        )


@dataclass(frozen=True, slots=True)
class SignalHook:
    """Send ``signal`` to the process whose pid is in ``pidfile``."""

    signal: signal.Signals
    pidfile: Path

    @property
    def name(self) -> str:
        return f"signal {self.signal.name} to pid in {self.pidfile}"

    async def run(self, environ: Mapping[str, str]) -> HookResult:
        started = time.perf_counter()
        try:
            text = self.pidfile.read_text().strip()
            pid = int(text)
        except OSError as exc:
            return self._failed(f"pidfile {self.pidfile} cannot be read: {exc.strerror}", started)
        except ValueError:
            return self._failed(f"pidfile {self.pidfile} holds no pid", started)
        if pid <= 1:
            return self._failed(f"pidfile {self.pidfile} holds pid {pid}, refusing", started)

        try:
            os.kill(pid, self.signal)
        except ProcessLookupError:
            return self._failed(f"no process {pid} (stale pidfile {self.pidfile})", started)
        except PermissionError:
            return self._failed(f"not allowed to signal pid {pid}", started)
        return HookResult(self.name, ok=True, duration_ms=(time.perf_counter() - started) * 1000)

    def _failed(self, error: str, started: float) -> HookResult:
        return HookResult(
            self.name, ok=False, error=error, duration_ms=(time.perf_counter() - started) * 1000
        )


Hook = CommandHook | SignalHook


async def run_hooks(
    hooks: Sequence[Hook],
    *,
    version: str,
    config_dir: Path,
    state: str,
    redact: Callable[[str], str] = lambda text: text,
) -> list[HookResult]:
    """Run every hook in order (one failing does not skip the others).

    ``redact`` scrubs secret values out of a hook's command line and what it printed
    before they are logged or reported.
    """
    environ = {
        **os.environ,
        "HOTCONF_VERSION": version,
        "HOTCONF_CONFIG_DIR": str(config_dir),
        "HOTCONF_STATE": state,
    }
    results = []
    for hook in hooks:
        result = await hook.run(environ)
        # A command line may carry a token as much as its output may print one.
        result = HookResult(
            redact(result.hook), result.ok, result.exit_code, redact(result.stderr_tail),
            result.timed_out, redact(result.error), result.duration_ms,
        )
        if result.ok:
            logger.info("hook ok: hook=%r duration_ms=%.1f", result.hook, result.duration_ms)
        else:
            logger.warning("hook failed: %s", result.describe())
        results.append(result)
    return results


def kill_running_hooks() -> None:
    """Kill every hook still running; for a forced exit."""
    for group in list(running_groups):
        _kill_group(group)


async def _read_tail(stream: asyncio.StreamReader | None, tail: bytearray) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        tail.extend(chunk)
        del tail[:-STDERR_TAIL_BYTES]


def _kill_group(group: int) -> None:
    # The group is gone already, or was never ours to kill: nothing left to do.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
