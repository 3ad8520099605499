"""Hearing back from the agents: the Redis stream first, status.json over SFTP always.

Redis is the fast path. A report counts only when it names this version and a host
of the inventory (and, with a shared key, carries a valid signature): a host that
did not report has not converged, whatever else Redis says. While Redis is away,
or for a host whose agent does not reach Redis, status.json read over the host's
own connection answers instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from controller.targets import HostTarget
from hotconf.bus import (
    REPORTS_STREAM,
    STATUS_HASH,
    AgentReport,
    decode_report,
    report_from_stream_fields,
)
from hotconf.errors import BusMessageError

logger = logging.getLogger(__name__)

# How often status.json is read while waiting: soon at first, then less often.
_FIRST_POLL_S = 0.02
_LONGEST_POLL_S = 0.5
# With Redis answering, status.json is only the safety net for agents that do not.
_POLL_WITH_REDIS_S = 1.0


async def connect_redis(redis_url: str | None, *, socket_timeout: float = 5.0) -> Any | None:
    """A ``redis.asyncio`` client that answered PING, or None (no URL, or no answer).

    Imported here, on first use: a run that never needs Redis never pays for it.
    """
    if not redis_url:
        return None
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=1.0,
                                     socket_timeout=socket_timeout)
    try:
        await client.ping()
    except Exception as exc:  # redis-py raises many kinds; all mean "no fast path"
        logger.warning("redis unavailable, reports will be read over SSH reason=%s",
                       type(exc).__name__)
        await client.aclose()
        return None
    return client


class ReportCollector:
    """Waits for the agents' reports of one version.

    ``redis`` is a connected ``redis.asyncio.Redis`` or None. ``mark()`` must be
    called before the files land, so that no report written after it is missed.
    """

    def __init__(self, redis: Any | None, key: bytes | None) -> None:
        self.redis = redis
        self.key = key
        self.rejected_signatures = 0
        # When each host's answer arrived (time.perf_counter), for its duration.
        self.arrivals: dict[str, float] = {}
        self._stream_position = "0-0"

    async def mark(self) -> None:
        """Remember the stream's end: reports after this point are this run's."""
        if self.redis is None:
            return
        try:
            newest = await self.redis.xrevrange(REPORTS_STREAM, count=1)
        except Exception as exc:  # redis-py raises many kinds; all mean "no fast path"
            self._lose_redis(exc)
            return
        if newest:
            self._stream_position = _text(newest[0][0])

    async def wait(self, targets: Mapping[str, HostTarget], version: str,
                   before: Mapping[str, float | None], timeout: float) -> dict[str, AgentReport]:
        """Each host's report of ``version`` made since the push began, for as many
        hosts as answer within ``timeout`` seconds; hosts missing did not report.

        ``before`` holds each host's report stamp as read before its files were
        written. The stream after ``mark()`` holds only new reports; from the status
        hash or status.json, a report counts only when it is not that earlier one. So
        a past visit to the same version (V, then W, then V again) is never taken for
        an answer, and no clock, the agents' or ours, is compared with another.
        """
        found: dict[str, AgentReport] = {}
        done = asyncio.Event()

        def record(report: AgentReport, *, new: bool = False) -> None:
            if report.host not in targets or report.host in found or report.version != version:
                return
            if not new and report.ts == before.get(report.host):
                return
            found[report.host] = report
            self.arrivals[report.host] = time.perf_counter()
            if len(found) == len(targets):
                done.set()

        for report in (await self.latest(targets)).values():
            record(report)
        if done.is_set():
            return found

        pollers = [asyncio.create_task(self._poll_status(name, target, record, done))
                   for name, target in targets.items()]
        follower = (asyncio.create_task(self._follow_stream(record, done))
                    if self.redis is not None else None)
        try:
            async with asyncio.timeout(timeout):
                await done.wait()
        except TimeoutError:
            pass
        finally:
            done.set()
            for poller in pollers:
                poller.cancel()
            # The stream follower is not cancelled: redis-py can swallow the
            # cancellation of a blocking XREAD (redis/redis-py#2028) and leave the
            # task reading forever. It sees the event within one XREAD block instead.
            await asyncio.gather(*pollers, *([follower] if follower else []),
                                 return_exceptions=True)
        return found

    async def latest(self, hosts: Iterable[str]) -> dict[str, AgentReport]:
        """Each host's latest report from the status hash (empty without Redis)."""
        if self.redis is None:
            return {}
        wanted = list(hosts)
        try:
            values = await self.redis.hmget(STATUS_HASH, wanted)
        except Exception as exc:
            self._lose_redis(exc)
            return {}
        reports = {}
        for name, raw in zip(wanted, values, strict=True):
            if raw is None:
                continue
            try:
                reports[name] = decode_report(raw, self.key)
            except BusMessageError as exc:
                self.rejected_signatures += 1
                logger.warning("status hash entry dropped host=%s reason=%s", name, exc)
        return reports

    async def _follow_stream(self, record: Any, done: asyncio.Event) -> None:
        while not done.is_set() and self.redis is not None:
            try:
                answer = await self.redis.xread({REPORTS_STREAM: self._stream_position},
                                                 block=200, count=100)
            except Exception as exc:
                self._lose_redis(exc)
                return
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    self._stream_position = _text(entry_id)
                    try:
                        record(report_from_stream_fields(fields, self.key), new=True)
                    except BusMessageError as exc:
                        self.rejected_signatures += 1
                        logger.warning("report dropped from stream reason=%s", exc)

    async def _poll_status(self, name: str, target: HostTarget, record: Any,
                           done: asyncio.Event) -> None:
        delay = _POLL_WITH_REDIS_S if self.redis is not None else _FIRST_POLL_S
        while not done.is_set():
            try:
                status = await target.read_status()
            except Exception as exc:
                logger.debug("status.json unreadable host=%s reason=%s", name, exc)
                status = None
            report = report_from_status(name, status)
            if report is not None:
                record(report)
            await asyncio.sleep(delay)
            if self.redis is None:
                delay = min(delay * 2, _LONGEST_POLL_S)

    def _lose_redis(self, exc: Exception) -> None:
        logger.warning("redis unavailable, reading reports over SSH instead reason=%s",
                       type(exc).__name__)
        self.redis = None


def report_from_status(name: str, status: dict[str, Any] | None) -> AgentReport | None:
    """status.json as a report; it is not signed (it never left the host's disk)."""
    if not status:
        return None
    try:
        return AgentReport(
            host=name,
            version=str(status["version"]),
            state=status["state"],
            summary=status.get("summary") or {},
            ts=_timestamp(status.get("ts", status.get("time"))),
        )
    except (KeyError, TypeError, ValueError, BusMessageError):
        return None


def _timestamp(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        from datetime import datetime

        return datetime.fromisoformat(value).timestamp()
    return time.time()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
