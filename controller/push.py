"""``hotconf push``: validate here, then converge the fleet on this configuration.

One run: validate the main host's files (a CRITICAL refuses; ``--force`` pushes
anyway but never a file that does not parse), then per host, DESIGN.md's "Push, one
host", in batches: the canary first, which must report ``applied`` before any other
host starts; at most ``forks`` hosts at once; no new host once the failures pass
``max_fail``. Each host's connection is opened once and kept for the whole run.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.diffs import masked_diff
from controller.errors import ControllerError, HostUnreachable
from controller.inventory import Host
from controller.push_results import HostResult, Outcome, PushResult
from controller.reports import ReportCollector, connect_redis, report_from_status
from controller.rollout import Share, failures_allowed, plan_batches
from controller.targets import HostTarget, LocalTarget
from hotconf.bus import RELOAD_CHANNEL, AgentReport, ReloadMessage, encode_reload
from hotconf.errors import FileWriteError
from hotconf.findings import Level, Report
from hotconf.locking import FileLock
from hotconf.snapshot import Snapshot, load_snapshot
from hotconf.version import BASE_FILE, content_version

logger = logging.getLogger(__name__)

_AGENT_STATES: dict[str, Outcome] = {
    "applied": "applied", "unchanged": "applied", "rejected": "rejected",
    "hook_failed": "hook_failed", "stale": "stale",
}


class LocalConfigRefused(ControllerError):
    """The main host's own configuration is not fit to push."""

    exit_code = 3

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class PushOptions:
    """Everything one push run is told, gathered from the command line."""

    config_dir: Path
    check: bool = False
    diff: bool = False
    canary: int = 0
    batch: Share | None = None
    max_fail: Share | None = None
    forks: int = 20
    wait: bool = True
    timeout: float = 30.0
    force: bool = False
    accept_new_host_keys: bool = False
    redis_url: str | None = None
    bus_key: bytes | None = None


ProgressCallback = Callable[[str, str, "HostResult | None"], None]


def validate_for_push(config_dir: Path, *, force: bool) -> Snapshot:
    """The main host's files, validated without this shell's environment.

    Raises LocalConfigRefused on a CRITICAL finding (with ``force``: only on a file
    that does not parse or cannot be read at all).
    """
    snapshot = _read_consistent(config_dir)
    critical = snapshot.report.at(Level.CRITICAL)
    unparsable = [finding for finding in critical
                  if finding.category == "syntax" or finding.path == ""]
    if unparsable or (critical and not force):
        first = (unparsable or critical)[0]
        advice = ("--force never pushes a file that does not parse" if unparsable and force
                  else "fix them, or push anyway with --force")
        raise LocalConfigRefused(
            f"{config_dir} has {len(critical)} CRITICAL finding(s), first: {first}; "
            f"nothing was pushed: {advice}",
            snapshot.report,
        )
    return snapshot


def _read_consistent(config_dir: Path) -> Snapshot:
    """Read both files under the sync lock, so a sync in progress is never half-pushed."""
    lock = FileLock(config_dir / BASE_FILE, timeout=10.0, purpose="hotconf push reads")
    try:
        lock.acquire()
    except FileWriteError as exc:
        # A directory this user cannot write (or that is missing) cannot be synced
        # into either; read it as it is, and let validation say what is wrong.
        logger.debug("reading without the sync lock reason=%s", exc)
    try:
        return load_snapshot(config_dir, environ={})
    finally:
        lock.release()


def default_origin() -> str:
    return f"controller@{socket.gethostname()}"


class PushRun:
    """One push to a list of hosts; ``run()`` returns the PushResult."""

    def __init__(self, hosts: Sequence[Host], options: PushOptions,
                 progress: ProgressCallback | None = None,
                 target_factory: Callable[[Host, PushOptions], HostTarget] | None = None
                 ) -> None:
        self.hosts = list(hosts)
        self.options = options
        self.progress = progress or (lambda _host, _phase, _result: None)
        self.target_factory = target_factory or make_target
        self.targets: dict[str, HostTarget] = {}
        self.redis: Any | None = None
        self._collector: ReportCollector | None = None
        # Each waited-on host's report as it stood before this push touched it: a
        # report counts as an answer only when it is another one (no clocks involved).
        self._before: dict[str, float | None] = {}

    async def run(self) -> PushResult:
        snapshot = validate_for_push(self.options.config_dir, force=self.options.force)
        files = dict(snapshot.files)
        version = content_version(files)
        logger.info("push started version=%s hosts=%d check=%s", version, len(self.hosts),
                    self.options.check)
        try:
            result = await self._roll_out(files, version)
        finally:
            await self._close()
        result.local_report = snapshot.report
        return result

    async def _roll_out(self, files: dict[str, bytes], version: str) -> PushResult:
        options = self.options
        batches = plan_batches(self.hosts, canary=options.canary, batch=options.batch)
        allowed = failures_allowed(options.max_fail, len(self.hosts))
        results: list[HostResult] = []
        untouched: list[str] = []
        stopped = ""
        limiter = asyncio.Semaphore(max(options.forks, 1))

        for index, batch in enumerate(batches):
            failed = sum(1 for result in results if not result.succeeded)
            if stopped or failed > allowed:
                stopped = stopped or _too_many_failures(failed)
                untouched.extend(host.name for host in batch)
                continue
            batch_results = await self._push_batch(batch, files, version, limiter, results,
                                                   allowed, untouched)
            results.extend(batch_results)
            if index == 0 and options.canary and not all(r.succeeded for r in batch_results):
                stopped = "the canary did not report applied"
            elif untouched and not stopped:
                # Hosts of this very batch were held back (--forks smaller than the batch).
                stopped = _too_many_failures(sum(1 for r in results if not r.succeeded))
        return PushResult(version, results, untouched, stopped)

    async def _push_batch(self, batch: list[Host], files: dict[str, bytes], version: str,
                          limiter: asyncio.Semaphore, earlier: list[HostResult], allowed: int,
                          untouched: list[str]) -> list[HostResult]:
        outcomes: dict[str, HostResult] = {}
        changed: dict[str, HostTarget] = {}

        async def one(host: Host) -> None:
            async with limiter:
                failed = sum(1 for r in [*earlier, *outcomes.values()] if not r.succeeded)
                if failed > allowed:
                    untouched.append(host.name)
                    return
                result, target = await self._land_files(host, files, version)
                outcomes[host.name] = result
                if target is not None:
                    changed[host.name] = target

        async with asyncio.TaskGroup() as group:
            for host in batch:
                group.create_task(one(host))

        if changed and self.options.wait and not self.options.check:
            for name in changed:
                self.progress(name, "waiting for the agent", None)
            # Redis is reached only now that there is something to hear about: a push
            # with nothing to change never pays for it. Reports the agents sent before
            # the stream is marked are in the status hash, which wait() reads first.
            collector = await self._report_collector()
            await collector.mark()
            await self._publish(version, files, sorted(changed))
            before = {name: self._before.get(name) for name in changed}
            reports = await collector.wait(changed, version, before, self.options.timeout)
            waited_until = time.perf_counter()
            for name in changed:
                result = outcomes[name]
                self._settle(result, reports.get(name), version)
                # A host's time runs until its agent answered (or the wait ended).
                result.seconds = collector.arrivals.get(name, waited_until) - result.started

        ordered = [outcomes[host.name] for host in batch if host.name in outcomes]
        for result in ordered:
            self.progress(result.name, result.outcome, result)
        return ordered

    async def _land_files(self, host: Host, files: dict[str, bytes],
                          version: str) -> tuple[HostResult, HostTarget | None]:
        """Steps 1-5 on one host; the target is returned when files were written."""
        result = HostResult(host.name, "failed")
        try:
            self.progress(host.name, "connecting", None)
            target = self.targets.get(host.name)
            if target is None:
                target = self.target_factory(host, self.options)
                self.targets[host.name] = target
                await target.connect()

            waiting = self.options.wait and not self.options.check
            if waiting:
                # The agent's last report is read beside the files, in the same round
                # trips: it tells an answer from an old report, and whether identical
                # files were ever applied.
                current, last_report = await asyncio.gather(
                    target.read_files(), self._read_report(target, host.name))
                self._before[host.name] = last_report.ts if last_report else None
            else:
                current, last_report = await target.read_files(), None
            result.before = content_version(current)
            if self.options.diff:
                result.diff = masked_diff(current, files, host.name)
            if result.before == version:
                result.outcome, result.after = "ok", version
                if waiting:
                    return self._confirm_served(result, target, version, last_report)
                return result, None
            if self.options.check:
                result.outcome = "changed"
                result.reason = f"would change {result.before} -> {version}"
                return result, None

            self.progress(host.name, "uploading", None)
            await target.write_files(files)
            result.after = version
            result.outcome = "applied" if not self.options.wait else "changed"
            if not self.options.wait:
                result.reason = "files written; not waiting for the agent (--no-wait)"
            return result, target
        except ControllerError as exc:
            result.outcome = "unreachable" if isinstance(exc, HostUnreachable) else "failed"
            result.reason = str(exc)
            return result, None
        except Exception as exc:  # one broken host must not end the whole run
            logger.exception("push failed host=%s", host.name)
            result.reason = f"{type(exc).__name__}: {exc}"
            return result, None
        finally:
            result.seconds = time.perf_counter() - result.started

    def _confirm_served(self, result: HostResult, target: HostTarget, version: str,
                        report: AgentReport | None) -> tuple[HostResult, HostTarget | None]:
        """Identical files are "ok" only when the agent took them; else wait for it.

        Files already in place may have been rejected by the agent, or landed while it
        was down: the agent's own last report (status.json) says. The target is
        returned when the agent has yet to report this version.
        """
        if report is None or report.version != version or report.state == "stale":
            return result, target
        if report.state not in ("applied", "unchanged"):
            self._settle(result, report, version)
        return result, None

    async def _read_report(self, target: HostTarget, name: str) -> AgentReport | None:
        try:
            return report_from_status(name, await target.read_status())
        except Exception as exc:  # an unreadable status.json is "no report yet"
            logger.debug("status.json unreadable host=%s reason=%s", name, exc)
            return None

    def _settle(self, result: HostResult, report: Any, version: str) -> None:
        if report is None:
            landed = ("files already in place" if result.outcome == "ok"
                      else "files written")
            result.outcome = "failed"
            result.reason = (f"{landed}, but the agent did not report version {version} "
                             f"within {self.options.timeout:g}s: is hotconf-agent running "
                             "there? (hotconf status shows its last report)")
            return
        result.outcome = _AGENT_STATES.get(report.state, "failed")
        result.summary = dict(report.summary)
        if result.outcome != "applied":
            result.reason = _reason_from_summary(report.state, result.summary)

    async def _publish(self, version: str, files: dict[str, bytes], hosts: list[str]) -> None:
        if self._collector is None or self._collector.redis is None:
            return
        message = ReloadMessage(version=version, files=tuple(files), origin=default_origin(),
                                hosts=tuple(hosts))
        try:
            await self._collector.redis.publish(
                RELOAD_CHANNEL, encode_reload(message, self.options.bus_key))
        except Exception as exc:
            logger.warning("reload message not published (agents will notice the files "
                           "anyway) reason=%s", type(exc).__name__)

    async def _report_collector(self) -> ReportCollector:
        if self._collector is None:
            self.redis = await connect_redis(self.options.redis_url)
            self._collector = ReportCollector(self.redis, self.options.bus_key)
        return self._collector

    async def _close(self) -> None:
        targets, self.targets = self.targets, {}
        await asyncio.gather(*(target.close() for target in targets.values()),
                             return_exceptions=True)
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None


def _too_many_failures(failed: int) -> str:
    return f"{failed} host(s) failed, more than --max-fail allows"


def _reason_from_summary(state: str, summary: dict[str, Any]) -> str:
    if state == "rejected":
        findings = summary.get("critical_findings") or summary.get("findings") or []
        first = findings[0] if findings else ""
        text = first.get("message", "") if isinstance(first, dict) else str(first)
        return f"the agent rejected it and kept its last good version: {text}".rstrip(": ")
    if state == "hook_failed":
        return f"a reload hook failed: {summary.get('hook') or summary.get('error') or ''}"
    if state == "stale":
        return "the agent was told of this version but never saw its files"
    return state


def make_target(host: Host, options: PushOptions) -> HostTarget:
    """The target for a host: this disk for ``connection: local``, else SFTP."""
    if host.is_local:
        return LocalTarget(host)
    from controller.ssh_target import SshTarget

    # --check changes nothing anywhere, this machine's known_hosts included: a new
    # key is trusted for the run, and recorded only by a push that changes things.
    return SshTarget(host, accept_new_host_keys=options.accept_new_host_keys,
                     record_new_host_keys=not options.check)
