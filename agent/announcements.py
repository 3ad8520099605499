"""Versions announced on Redis that are not on disk yet.

A reload message may arrive before its files do (or the files may never come: the
push failed halfway, or went to another directory). The agent does not act on the
message; it waits for the watcher to bring the files. If the announced version has
not been looked at within ``stale_after`` seconds, the agent reports it ``stale``,
so the controller learns that this host never saw those files.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Announcements:
    """Timers for announced versions; ``settle`` a version when it was looked at.

    ``looked_at`` says whether the reload loop has taken up a version already: a
    reload still running (a slow hook) settles only when it ends, and its version
    reached the disk all the same.
    """

    def __init__(
        self,
        stale_after: float,
        on_stale: Callable[[str], None],
        looked_at: Callable[[str], bool] = lambda version: False,
    ) -> None:
        self.stale_after = stale_after
        self._on_stale = on_stale
        self._looked_at = looked_at
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def expect(self, version: str) -> None:
        """Start waiting for ``version``; a repeated announcement keeps the first timer."""
        if version in self._timers:
            return
        loop = asyncio.get_running_loop()
        self._timers[version] = loop.call_later(self.stale_after, self._expire, version)

    def settle(self, version: str | None) -> None:
        """``version`` was looked at (applied, rejected or unchanged): stop waiting."""
        if version is None:
            return
        timer = self._timers.pop(version, None)
        if timer is not None:
            timer.cancel()

    def waiting(self) -> list[str]:
        return sorted(self._timers)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _expire(self, version: str) -> None:
        self._timers.pop(version, None)
        if self._looked_at(version):
            logger.debug("announced version is being applied, not stale: version=%s", version)
            return
        logger.warning(
            "announced version never reached the disk: version=%s waited_s=%g",
            version, self.stale_after,
        )
        self._on_stale(version)
