"""One sync per minute per client, in memory that stays bounded.

The seed's limiter kept a list per client address forever, so every new address grew
it.  Here each client has one entry, the time its slot was granted, kept in grant
order: the oldest entries are the first to expire and are dropped from the front on
every call.  At most ``max_clients`` entries exist.  When they are all still running,
a new client is told to wait until the oldest expires rather than let in: a flood of
addresses must not become a way around the limit.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_INTERVAL_S = 60.0
DEFAULT_MAX_CLIENTS = 4096


class SyncRateLimiter:
    """Grants each client one slot per ``interval_s`` seconds.

    Not thread-safe: it is meant to be called from the event loop only.  An interval
    of 0 disables the limit.

    >>> limiter = SyncRateLimiter(interval_s=60)
    >>> limiter.try_acquire("127.0.0.1"), limiter.try_acquire("127.0.0.1") > 59
    (0.0, True)
    """

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s < 0 or max_clients < 1:
            raise ValueError("interval_s must be >= 0 and max_clients >= 1")
        self.interval_s = interval_s
        self.max_clients = max_clients
        self._clock = clock
        self._granted: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._granted)

    def try_acquire(self, client: str) -> float:
        """Take the client's slot and return 0.0, or return the seconds left to wait."""
        if self.interval_s == 0:
            return 0.0

        now = self._clock()
        self._forget_expired(now)

        granted_at = self._granted.get(client)
        if granted_at is not None:
            return self._remaining(granted_at, now)
        if len(self._granted) >= self.max_clients:
            oldest = next(iter(self._granted.values()))
            return self._remaining(oldest, now)

        self._granted[client] = now
        return 0.0

    def release(self, client: str) -> None:
        """Give the client's slot back: its sync changed nothing (refused, locked, failed),
        and the answer told it to fix the cause and try again."""
        self._granted.pop(client, None)

    def _forget_expired(self, now: float) -> None:
        while self._granted:
            client, granted_at = next(iter(self._granted.items()))
            if now - granted_at < self.interval_s:
                return
            del self._granted[client]

    def _remaining(self, granted_at: float, now: float) -> float:
        return max(self.interval_s - (now - granted_at), 0.001)


def retry_after_header(seconds: float) -> str:
    """A Retry-After value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
