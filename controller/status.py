"""The fleet's state: which version each host applied, when, and whether it drifted.

From the Redis status hash when Redis answers, from each host's status.json over
SFTP otherwise. Every host is also connected to, so "reachable" means it answers
now, not that it once reported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.errors import ControllerError
from controller.inventory import Host
from controller.reports import ReportCollector, connect_redis, report_from_status
from controller.targets import HostTarget
from hotconf.bus import AgentReport
from hotconf.version import directory_version

TargetFactory = Callable[[Host], HostTarget]


@dataclass(slots=True)
class HostStatus:
    """One row of ``hotconf status``."""

    name: str
    reachable: bool
    version: str | None = None
    serving: str | None = None
    state: str | None = None
    reported_at: float | None = None
    source: str | None = None  # "redis" or "status.json"
    drift: bool = False
    problem: str = ""
    summary: dict[str, Any] = field(default_factory=dict)

    def age(self, now: float) -> float | None:
        return None if self.reported_at is None else max(0.0, now - self.reported_at)

    def to_dict(self, now: float) -> dict[str, Any]:
        age = self.age(now)
        return {
            "host": self.name, "reachable": self.reachable, "version": self.version,
            "serving": self.serving, "state": self.state, "reported_at": self.reported_at,
            "age_seconds": None if age is None else round(age, 1),
            "source": self.source, "drift": self.drift, "problem": self.problem or None,
            "summary": self.summary,
        }


@dataclass(slots=True)
class FleetStatus:
    """The main host's version and every host's row."""

    expected_version: str
    hosts: list[HostStatus]
    redis: bool
    redis_configured: bool = False
    taken_at: float = field(default_factory=time.time)

    @property
    def converged(self) -> bool:
        return all(host.reachable and host.serving == self.expected_version
                   for host in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expected_version": self.expected_version,
            "converged": self.converged,
            "redis": self.redis,
            "redis_configured": self.redis_configured,
            "taken_at": self.taken_at,
            "hosts": [host.to_dict(self.taken_at) for host in self.hosts],
        }


async def fleet_status(hosts: Sequence[Host], config_dir: Path, *, redis_url: str | None,
                       bus_key: bytes | None, target_factory: TargetFactory,
                       forks: int = 20) -> FleetStatus:
    """Ask every host (and Redis) what it runs; never raises for one bad host."""
    expected = await asyncio.to_thread(directory_version, config_dir)
    redis = await connect_redis(redis_url, socket_timeout=2.0)
    try:
        collector = ReportCollector(redis, bus_key)
        from_redis = await collector.latest(host.name for host in hosts)
        limiter = asyncio.Semaphore(max(forks, 1))

        async def one(host: Host) -> HostStatus:
            async with limiter:
                return await _host_status(host, target_factory(host), from_redis.get(host.name),
                                          expected)

        rows = await asyncio.gather(*(one(host) for host in hosts))
        return FleetStatus(expected, list(rows), redis=collector.redis is not None,
                           redis_configured=bool(redis_url))
    finally:
        if redis is not None:
            await redis.aclose()


async def _host_status(host: Host, target: HostTarget, report: AgentReport | None,
                       expected: str) -> HostStatus:
    row = HostStatus(host.name, reachable=False)
    try:
        await target.connect()
        row.reachable = True
        # The newer of the two wins: an agent cut off from Redis goes on applying and
        # writing status.json, while its entry in the Redis hash grows old.
        on_disk = report_from_status(host.name, await target.read_status())
        if on_disk is not None and (report is None or on_disk.ts > report.ts):
            report, row.source = on_disk, "status.json"
        elif report is not None:
            row.source = "redis"
    except ControllerError as exc:
        row.problem = str(exc)
    except Exception as exc:  # one broken host must not hide the others
        row.problem = f"{type(exc).__name__}: {exc}"
    finally:
        await target.close()

    if report is not None:
        row.source = row.source or "redis"
        row.version, row.state, row.reported_at = report.version, report.state, report.ts
        row.summary = dict(report.summary)
        # What runs is what counts: a rejected version on disk is not the one served.
        serving = row.summary.get("serving")
        row.serving = serving if isinstance(serving, str) else (
            report.version if report.state in ("applied", "unchanged") else None)
        row.drift = row.serving != expected
    elif row.reachable:
        row.problem = "no report yet: is hotconf-agent running there?"
    return row
