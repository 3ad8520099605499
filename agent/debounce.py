"""Debounce: let a burst of writes settle before reading the files.

An editor's save or a tool's write is several file system steps (write a temp,
rename, remove a backup); reading in the middle can see a half-written or missing
file. So after a look arrives, the reload waits until no new look has come for the
quiet period, but never longer than the maximum wait from the first one: a file that
is rewritten forever still gets applied.

An urgent look (a Redis message whose version already matches the disk) ends the
wait at once. A quiet period of 0 adds no latency at all: the look is handed on as
soon as it is taken.
"""

from __future__ import annotations

import asyncio
import logging

from agent.looks import Look, LookQueue

logger = logging.getLogger(__name__)

DEFAULT_QUIET = 0.5
DEFAULT_MAX_WAIT = 5.0


class Debouncer:
    """Hands on settled looks from a ``LookQueue``, one per burst.

    Iterate it (``async for look in debouncer``) or await ``settled()``. Each
    settled look merges everything that arrived during its wait, so the log can say
    what was seen.
    """

    def __init__(
        self,
        looks: LookQueue,
        *,
        quiet: float = DEFAULT_QUIET,
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        if quiet < 0:
            raise ValueError(f"debounce quiet period must be 0 or more seconds, not {quiet}")
        if max_wait < 0:
            raise ValueError(f"debounce maximum wait must be 0 or more seconds, not {max_wait}")
        self._looks = looks
        self.quiet = quiet
        # A maximum below the quiet period would make the quiet period meaningless.
        self.max_wait = max(max_wait, quiet)

    def __aiter__(self) -> Debouncer:
        return self

    async def __anext__(self) -> Look:
        return await self.settled()

    async def settled(self) -> Look:
        """Wait for a look, then for the quiet period; return what was seen."""
        look = await self._looks.take()
        if self.quiet == 0 or look.urgent:
            return look

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while True:
            window = min(self.quiet, deadline - loop.time())
            try:
                async with asyncio.timeout(max(window, 0)):
                    more = await self._looks.take()
            except TimeoutError:
                if window < self.quiet:
                    logger.info(
                        "changes kept coming, reading anyway: max_wait=%s seen=%s",
                        self.max_wait,
                        look.describe(),
                    )
                return look
            look = look.merged(more)
            if more.urgent:
                return look
