"""An exclusive lock on a configuration file, shared by every process on the host.

The lock is a ``flock`` on ``<file>.lock`` beside the file. The lock file is never
unlinked: removing it would let a second writer lock a new inode while the first still
holds the old one, and both would believe they hold "the" lock. A ``flock`` dies with
the process that holds it, so a lock file left by a crashed process is simply taken.

The holder writes its pid and start time into the lock file, so a process that waits
in vain can say who is in the way::

    with FileLock(config_dir / "config.yaml", purpose="sync"):
        ...  # read, decide, write
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from hotconf.errors import FileWriteError, LockTimeout

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
LOCK_SUFFIX = ".lock"

# flock(2) has neither a timeout nor an event to wait on, so a contended lock is retried
# with a short backoff; the first retry is quick because most holders finish in ms.
_FIRST_RETRY_S = 0.001
_LONGEST_RETRY_S = 0.05


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or last held) a lock, as written in the lock file."""

    pid: int
    since: datetime
    host: str = ""
    purpose: str = ""

    def alive(self) -> bool:
        """True when a process with this pid runs on this host."""
        if self.host and self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def lock_path_for(target: Path) -> Path:
    """The lock file that guards ``target``: ``<file>.lock`` in the same directory."""
    return target.with_name(target.name + LOCK_SUFFIX)


def read_holder(lock_path: Path) -> LockHolder | None:
    """The holder recorded in ``lock_path``, or None when it is empty or unreadable."""
    try:
        record = json.loads(lock_path.read_bytes() or b"null")
        return LockHolder(
            pid=int(record["pid"]),
            since=datetime.fromisoformat(record["since"]),
            host=str(record.get("host", "")),
            purpose=str(record.get("purpose", "")),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


class FileLock:
    """An exclusive, inter-process lock on ``target``, with a timeout.

    Use it as a context manager. ``acquire`` raises ``LockTimeout`` naming the file,
    the holder's pid and since when it holds the lock; ``release`` is safe to call
    more than once.
    """

    def __init__(
        self, target: Path, *, timeout: float = DEFAULT_TIMEOUT_S, purpose: str = ""
    ) -> None:
        self.target = target
        self.path = lock_path_for(target)
        self.timeout = timeout
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, waiting at most ``timeout`` seconds."""
        if self._fd is not None:
            return
        fd = self._open()
        try:
            self._wait_for_lock(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._record_holder(fd)
        logger.debug("lock taken path=%s pid=%d", self.path, os.getpid())

    def release(self) -> None:
        """Let the lock go; the lock file stays, emptied of our record."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        logger.debug("lock released path=%s pid=%d", self.path, os.getpid())

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as exc:
            opened = self._open_read_only_fallback(exc)
            if opened is not None:
                return opened
            reason = exc.strerror or str(exc)
            if not self.path.parent.is_dir():
                reason = f"directory {self.path.parent} does not exist"
            msg = (
                f"{self.path}: cannot open the lock file: {reason}."
                " Check that the config directory exists and is writable by this user."
            )
            raise FileWriteError(msg) from exc

    def _open_read_only_fallback(self, exc: OSError) -> int | None:
        # On a read-only directory an existing lock file can still be locked (flock needs
        # no write access); the holder record is then simply not written.
        if not self.path.exists():
            return None
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def _wait_for_lock(self, fd: int) -> None:
        deadline = time.monotonic() + self.timeout
        pause = _FIRST_RETRY_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error()
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _LONGEST_RETRY_S)

    def _record_holder(self, fd: int) -> None:
        record = {
            "pid": os.getpid(),
            "since": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "host": socket.gethostname(),
            "purpose": self.purpose,
        }
        payload = (json.dumps(record) + "\n").encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, payload, 0)
        except OSError as exc:
            logger.debug("lock holder not recorded path=%s error=%s", self.path, exc.strerror)

    def _timeout_error(self) -> LockTimeout:
        holder = read_holder(self.path)
        waited = f"waited {self.timeout:g} s"
        if holder is None:
            who = "another process (it has not recorded its pid yet)"
            pid = None
        elif not holder.alive():
            who = f"another process (the lock file still names pid {holder.pid}, which has exited)"
            pid = None
        else:
            held_for = (datetime.now(UTC) - holder.since).total_seconds()
            doing = f" for {holder.purpose}" if holder.purpose else ""
            who = (
                f"pid {holder.pid}{doing} since {holder.since.isoformat(timespec='seconds')}"
                f" ({held_for:.1f} s ago)"
            )
            pid = holder.pid
        msg = (
            f"{self.target}: locked by {who}; {waited}. Wait for it to finish and retry,"
            f" or check that process (ps -p {pid if pid is not None else '<pid>'})."
            " Do not delete the lock file: it is safe to leave in place."
        )
        return LockTimeout(msg, holder_pid=pid)
