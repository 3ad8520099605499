"""Watching the config directory by polling, where inotify cannot be used.

Each pass stats the managed files and compares a fingerprint: (inode, size,
mtime_ns, ctime_ns). An atomic rename changes the inode, an in-place write changes
the size or the times. Two writes of the same size within one timestamp tick change
none of them, so a file touched in the last two seconds also has its content hashed
and compared. Two seconds covers the coarsest timestamps in use (FAT's two-second
mtime, one-second ext2/ext3 and many network filesystems) plus the pass itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from agent.looks import POLL, Look, LookQueue
from hotconf.version import MANAGED_FILES

logger = logging.getLogger(__name__)

RECENT_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a stat says about a file; equal fingerprints mean "probably unchanged"."""

    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> Fingerprint:
        return cls(stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)

    def touched_since(self, moment_ns: int) -> bool:
        return max(self.mtime_ns, self.ctime_ns) >= moment_ns


@dataclass(slots=True)
class _Seen:
    fingerprint: Fingerprint | None
    digest: bytes | None


class PollWatcher:
    """Turns differences between polling passes into looks.

    ``arm()`` takes the baseline without signalling; ``scan()`` runs one pass and
    returns the names that changed; ``run()`` scans every ``interval`` seconds until
    cancelled.
    """

    kind = "poll"

    def __init__(self, config_dir: Path, looks: LookQueue, *, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"poll interval must be above 0 seconds, not {interval}")
        self._config_dir = config_dir
        self._looks = looks
        self.interval = interval
        self._seen: dict[str, _Seen] = {}

    def arm(self) -> None:
        """Record what the files look like now; later passes compare with this."""
        self._seen = {name: self._observe(name, None) for name in MANAGED_FILES}

    def scan(self) -> frozenset[str]:
        """One polling pass: the managed files whose fingerprint or content moved."""
        changed = set()
        for name in MANAGED_FILES:
            before = self._seen.get(name, _Seen(None, None))
            after = self._observe(name, before)
            hashed_both = after.digest is not None and before.digest is not None
            if after.fingerprint != before.fingerprint or (
                hashed_both and after.digest != before.digest
            ):
                changed.add(name)
            self._seen[name] = after
        return frozenset(changed)

    async def run(self) -> None:
        """Scan every ``interval`` seconds and put a look for what changed."""
        while True:
            await asyncio.sleep(self.interval)
            changed = self.scan()
            if changed:
                logger.debug("poll saw a change: names=%s", ",".join(sorted(changed)))
                self._looks.put(Look.of(POLL, changed))

    def close(self) -> None:
        self._seen.clear()

    def _observe(self, name: str, before: _Seen | None) -> _Seen:
        path = self._config_dir / name
        try:
            status = path.stat()
            fingerprint = Fingerprint.of(status)
        except (FileNotFoundError, NotADirectoryError):
            return _Seen(None, None)
        except OSError as exc:
            # Unreadable for now (permissions, I/O): report it as a change the
            # reload loop will look at and explain; keep no stale fingerprint.
            logger.warning("cannot stat a managed file: path=%s error=%s", path, exc)
            return _Seen(None, None)

        # Hash only what was touched lately: older files cannot hide a same-tick write.
        # Only a regular file: reading a FIFO put in its place would block the loop.
        recent = fingerprint.touched_since(time.time_ns() - RECENT_NS)
        if not recent or not stat.S_ISREG(status.st_mode):
            kept = before.digest if before and before.fingerprint == fingerprint else None
            return _Seen(fingerprint, kept)
        return _Seen(fingerprint, _digest(path))


def _digest(path: Path) -> bytes | None:
    try:
        # O_NONBLOCK: the file may be swapped for a FIFO between the stat and the open.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    digest = hashlib.sha256()
    with os.fdopen(descriptor, "rb") as handle:
        try:
            while chunk := handle.read(65536):
                digest.update(chunk)
        except OSError:
            return None
    return digest.digest()
