"""Look signals: the watchers' only output.

A watcher never decides whether the configuration changed. It says "look now" and
what made it say so; the reload loop reads the files and compares content versions.
Signals that arrive while nobody is reading are merged into one, so a burst of a
thousand inotify events costs one look, and the queue never grows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from hotconf.version import MANAGED_FILES

# Why a look was asked for. Each source uses its own word so the log can tell the
# story of a reload ("inotify(config.yaml)", "rescan", "redis").
INOTIFY = "inotify"
OVERFLOW = "overflow"
DIRECTORY = "directory"
WATCH_ERROR = "watch-error"
POLL = "poll"
RESCAN = "rescan"
REDIS = "redis"
SIGNAL = "signal"
START = "start"


def is_watched_name(name: str) -> bool:
    """Whether a name in the config directory can change the content version.

    Only the managed files count. Everything else an editor or a tool leaves next to
    them is noise: vim's ``.config.yaml.swp`` and ``4913`` probe, ``config.yaml~``
    backups, our own ``*.hotconf-tmp-*`` temps (their rename onto the real name is
    what counts) and the agent's ``.hotconf/`` directory.
    """
    return name in MANAGED_FILES


@dataclass(frozen=True, slots=True)
class Look:
    """A request to read the config directory again, and what prompted it.

    ``urgent`` skips the debounce wait: a Redis message whose version already
    matches the disk has nothing left to settle. ``forced`` re-applies even an
    unchanged version (SIGHUP). ``announced`` holds the versions Redis messages
    named, which want a report even when nothing changed.
    """

    reasons: frozenset[str]
    names: frozenset[str] = frozenset()
    urgent: bool = False
    forced: bool = False
    announced: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        reason: str,
        names: Iterable[str] = (),
        *,
        urgent: bool = False,
        forced: bool = False,
        announced: Iterable[str] = (),
    ) -> Look:
        return cls(frozenset((reason,)), frozenset(names), urgent, forced, frozenset(announced))

    def merged(self, other: Look) -> Look:
        """One look that stands for both."""
        return Look(
            self.reasons | other.reasons,
            self.names | other.names,
            self.urgent or other.urgent,
            self.forced or other.forced,
            self.announced | other.announced,
        )

    def describe(self) -> str:
        """``inotify(config.yaml)+rescan``: short enough for a log field."""
        parts = []
        for reason in sorted(self.reasons):
            if reason in (INOTIFY, POLL) and self.names:
                parts.append(f"{reason}({','.join(sorted(self.names))})")
            else:
                parts.append(reason)
        return "+".join(parts)


class LookQueue:
    """A mailbox of at most one pending look; new signals merge into it.

    Every producer runs on the event loop (inotify is read through
    ``loop.add_reader``), so no lock is needed. There is one consumer.
    """

    def __init__(self) -> None:
        self._pending: Look | None = None
        self._ready = asyncio.Event()

    def put(self, look: Look) -> None:
        """Add a signal; it merges with whatever is still unread."""
        self._pending = look if self._pending is None else self._pending.merged(look)
        self._ready.set()

    def take_nowait(self) -> Look | None:
        """The pending look, if any, now; the mailbox is empty afterwards."""
        look, self._pending = self._pending, None
        self._ready.clear()
        return look

    async def take(self) -> Look:
        """Wait for a look and return it; the mailbox is empty afterwards."""
        while True:
            look = self.take_nowait()
            if look is not None:
                return look
            await self._ready.wait()

    def pending(self) -> bool:
        return self._pending is not None
