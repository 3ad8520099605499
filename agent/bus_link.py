"""The agent's link to Redis: reports out, reload messages in, and staying connected.

Redis is a fast path, never the only one, so nothing here blocks a reload: reports
are queued and sent by this link's own task. While Redis is away the link retries
with capped exponential backoff and jitter, and logs the outage once. On every
(re)connect it subscribes again and re-sends the agent's latest report, since
pub/sub is fire and forget and a restarted Redis has forgotten the status hash.

A subscription can die without an error (a half-open socket, a paused server). So
the link checks it by a round trip of its own: it publishes a token on a private
channel and must receive it back on the subscription within a deadline; otherwise
the session is torn down and reconnected.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import secrets
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from hotconf.bus import (
    RELOAD_CHANNEL,
    REPORTS_STREAM,
    REPORTS_STREAM_MAXLEN,
    STATUS_HASH,
    AgentReport,
    ReloadMessage,
    decode_reload,
    encode_report,
    report_stream_fields,
)
from hotconf.errors import BusMessageError

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 0.1
BACKOFF_CAP = 5.0
CHECK_INTERVAL = 5.0
CHECK_TIMEOUT = 2.0
COMMAND_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2.0
CLOSE_TIMEOUT = 0.2
OUTBOX_LIMIT = 100

LinkState = Literal["connecting", "connected", "away", "closed"]


class LinkLost(Exception):
    """The session with Redis ended; the link reconnects."""


def redacted_url(url: str) -> str:
    """``redis://host:port/db`` without the password, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class BusLink:
    """Sends reports to Redis and hands valid reload messages to ``on_reload``.

    Run ``run()`` as a task; ``submit()`` never blocks. With ``key``, reports are
    signed and reload messages without a valid signature are dropped and counted.
    Messages whose origin is this host are ignored. ``on_change`` is called when
    what ``describe()`` says changes (connected, away, a message dropped).
    """

    def __init__(
        self,
        url: str,
        *,
        host_id: str,
        key: bytes | None,
        on_reload: Callable[[ReloadMessage], None] | None,
        check_interval: float = CHECK_INTERVAL,
        check_timeout: float = CHECK_TIMEOUT,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self.host_id = host_id
        self.state: LinkState = "connecting"
        self.dropped = 0
        self._key = key
        self._on_reload = on_reload
        self._on_change = on_change
        self._check_interval = check_interval
        self._check_timeout = check_timeout
        self._check_channel = f"hotconf:agent-check:{host_id}:{secrets.token_hex(4)}"
        self._check_waiters: dict[str, asyncio.Future[None]] = {}
        self._latest: AgentReport | None = None
        self._outbox: collections.deque[AgentReport] = collections.deque(maxlen=OUTBOX_LIMIT)
        self._outbox_ready = asyncio.Event()
        self._ever_connected = False

    def submit(self, report: AgentReport, *, latest: bool = True) -> None:
        """Queue ``report`` for Redis; ``latest`` ones are re-sent after a reconnect."""
        if latest:
            self._latest = report
        if self.state == "connected":
            self._outbox.append(report)
            self._outbox_ready.set()

    def describe(self) -> dict[str, Any]:
        """For status.json: where, whether connected, what was dropped."""
        return {"redis": redacted_url(self.url), "state": self.state,
                "dropped_messages": self.dropped}

    async def run(self) -> None:
        """Stay connected until cancelled."""
        failures = 0
        while True:
            try:
                await self._session()
            except* (RedisError, OSError, TimeoutError, LinkLost) as group:
                self._went_away(_first_reason(group))
            except* Exception as group:
                # A fault of ours must not end the fast path for good: log it, go on.
                logger.error("Redis link failed unexpectedly, reconnecting",
                             exc_info=group.exceptions[0])
                self._went_away(_first_reason(group))
            failures = 0 if self.state == "connected" else failures + 1
            if self.state != "away":
                self.state = "away"
                self._changed()
            delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2**failures) * random.uniform(0.5, 1.0)
            await asyncio.sleep(delay)

    def close(self) -> None:
        self.state = "closed"

    async def _session(self) -> None:
        client = Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT)
        pubsub = client.pubsub()
        try:
            channels = [self._check_channel]
            if self._on_reload is not None:
                channels.append(RELOAD_CHANNEL)
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    await client.ping()
                    await pubsub.subscribe(*channels)
            except TimeoutError:
                raise LinkLost(f"no answer to PING within {COMMAND_TIMEOUT:g} s") from None
            self._came_back()

            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._listen(pubsub))
                tasks.create_task(self._send(client))
                tasks.create_task(self._check(client))
        finally:
            await _close_quietly(pubsub, client)

    def _came_back(self) -> None:
        if self._ever_connected:
            logger.info("Redis back: redis=%s", redacted_url(self.url))
        else:
            logger.info("Redis connected: redis=%s", redacted_url(self.url))
        self._ever_connected = True
        self.state = "connected"
        self._changed()
        # Re-report: whatever was sent before may be gone with a restarted server.
        self._outbox.clear()
        if self._latest is not None:
            self._outbox.append(self._latest)
            self._outbox_ready.set()

    def _went_away(self, reason: str) -> None:
        if self.state == "connected":
            logger.warning("Redis lost, reconnecting: redis=%s reason=%s",
                           redacted_url(self.url), reason)
        elif self.state == "connecting":
            logger.warning("Redis away, running without it and retrying: redis=%s reason=%s",
                           redacted_url(self.url), reason)
        else:
            logger.debug("Redis still away: reason=%s", reason)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    async def _listen(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            channel = _text(message["channel"])
            if channel == self._check_channel:
                waiter = self._check_waiters.pop(_text(message["data"]), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                continue
            self._received(message["data"])
        raise LinkLost("subscription closed")

    def _received(self, data: bytes | str) -> None:
        try:
            reload = decode_reload(data, self._key)
        except BusMessageError as exc:
            self.dropped += 1
            logger.warning("reload message dropped: dropped_total=%d reason=%s", self.dropped, exc)
            self._changed()
            return
        if reload.origin == self.host_id:
            logger.debug("own reload message ignored: version=%s", reload.version)
            return
        if not reload.is_for(self.host_id):
            logger.debug("reload message for other hosts ignored: version=%s hosts=%s",
                         reload.version, ",".join(reload.hosts))
            return
        logger.info("reload message: version=%s origin=%s", reload.version, reload.origin)
        if self._on_reload is not None:
            self._on_reload(reload)

    async def _send(self, client: Redis) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                report = self._outbox[0]
                pipe = client.pipeline(transaction=False)
                pipe.xadd(
                    REPORTS_STREAM,
                    report_stream_fields(report, self._key),  # type: ignore[arg-type]
                    maxlen=REPORTS_STREAM_MAXLEN,
                    approximate=True,
                )
                pipe.hset(STATUS_HASH, report.host, encode_report(report, self._key))
                try:
                    async with asyncio.timeout(COMMAND_TIMEOUT):
                        await pipe.execute()
                except TimeoutError:
                    raise LinkLost(
                        f"report not acknowledged within {COMMAND_TIMEOUT:g} s"
                    ) from None
                self._outbox.popleft()

    async def _check(self, client: Redis) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            token = secrets.token_hex(8)
            waiter = asyncio.get_running_loop().create_future()
            self._check_waiters[token] = waiter
            try:
                async with asyncio.timeout(self._check_timeout):
                    await client.publish(self._check_channel, token)
                    await waiter
            except TimeoutError:
                raise LinkLost(
                    f"subscription check got no answer within {self._check_timeout:g} s"
                ) from None
            finally:
                self._check_waiters.pop(token, None)


async def _close_quietly(pubsub: PubSub, client: Redis) -> None:
    # A dead server must not hold the agent up: closing is bounded and best effort,
    # so that a stopping agent stays within its two seconds.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await client.aclose()


def _first_reason(group: BaseExceptionGroup[Any]) -> str:
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        else:
            leaves.append(error)

    collect(group)
    first = leaves[0] if leaves else group
    return f"{type(first).__name__}: {first}" if str(first) else type(first).__name__


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
