"""The reload pipeline: one look at the config directory, from bytes to report.

1. Read the managed files and compute the version; the version last looked at
   means nothing to do (unless forced by SIGHUP, or a Redis message asks to hear).
2. Layer and validate with ``hotconf.snapshot.evaluate``.
3. Any CRITICAL finding: reject, keep serving the last good configuration.
4. Otherwise save it as last-good, render it (``--render``), run the hooks.
5. Report: status.json, then Redis (never waited for).

At start the same pipeline runs once; with nothing valid on disk it falls back to
the last good set, and with no last good set either the agent cannot serve anything
and stops with exit code 3 (``NothingToServe``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.errors import AgentError
from agent.hooks import CommandHook, Hook, HookResult, SignalHook, run_hooks
from agent.last_good import LAST_GOOD_DIR, read_last_good, save_last_good
from agent.looks import START, Look
from agent.render import render_effective
from agent.settings import AgentSettings
from agent.status import StatusFile, finding_text, findings_summary, hooks_summary, short_line
from hotconf.bus import AgentReport, ReportState
from hotconf.errors import HotconfError
from hotconf.findings import Level
from hotconf.secrets import MASK, is_secret_path, mask_url_password
from hotconf.snapshot import Snapshot, evaluate, load_snapshot
from hotconf.sources import read_source
from hotconf.version import MANAGED_FILES, content_version

logger = logging.getLogger(__name__)

# Shorter secret values would mask innocent words in hook output.
MIN_SECRET_LENGTH = 4


class NothingToServe(AgentError):
    """At start, the files on disk are rejected and there is no last good set."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class DiskFiles:
    """The managed files as read once, and the ones that are there but cannot be used."""

    files: dict[str, bytes]
    unusable: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return content_version(self.files)

    @property
    def identity(self) -> str:
        """The version, marked when a file could not be read.

        An unreadable settings.json leaves the same bytes as a missing one; the mark
        keeps the two apart, so the file becoming readable again is a change.
        """
        if not self.unusable:
            return self.version
        return f"{self.version}+unusable:{','.join(self.unusable)}"


def read_disk(config_dir: Path) -> DiskFiles:
    """Read the managed files without ever blocking or raising.

    A file that is there but cannot be used (a directory, a FIFO, no permission) is
    named in ``unusable``; the evaluation turns it into a CRITICAL finding.
    """
    files: dict[str, bytes] = {}
    unusable: list[str] = []
    for name in MANAGED_FILES:
        raw = read_source(config_dir / name, required=False)
        if isinstance(raw, bytes):
            files[name] = raw
        elif raw is not None:
            unusable.append(name)
    return DiskFiles(files, tuple(unusable))


def build_hooks(settings: AgentSettings) -> list[Hook]:
    """The hooks the settings ask for: command hooks in order, then the signal hook."""
    hooks: list[Hook] = [CommandHook(argv, settings.hook_timeout) for argv in settings.hooks]
    if settings.signal is not None and settings.pidfile is not None:
        hooks.append(SignalHook(settings.signal, settings.pidfile))
    return hooks


class Reloader:
    """Runs the pipeline and remembers what is being served.

    ``publish`` receives every report after status.json is written; it must not
    block (the Redis side queues it). ``environ`` is the environment layer.
    """

    def __init__(
        self,
        settings: AgentSettings,
        status: StatusFile,
        publish: Callable[[AgentReport], None],
        environ: Mapping[str, str],
    ) -> None:
        self.settings = settings
        self.config_dir = settings.config_dir
        self.hooks = build_hooks(settings)
        self._status = status
        self._publish = publish
        self._environ = dict(environ)
        self.serving: Snapshot | None = None
        self.seen_version: str | None = None
        self._seen_identity: str | None = None
        self.last_report: AgentReport | None = None

    @property
    def serving_version(self) -> str | None:
        return self.serving.version if self.serving is not None else None

    async def start(self) -> AgentReport:
        """The first reload; raises ``NothingToServe`` when nothing valid can be served."""
        started = time.perf_counter()
        disk = read_disk(self.config_dir)
        self._seen_identity = disk.identity
        snapshot = self._evaluate(disk)
        look = Look.of(START)
        if not snapshot.report.critical:
            return await self._apply(snapshot, look, started)

        fallback = read_last_good(self.config_dir)
        good = evaluate(fallback, self.config_dir, self._environ) if fallback else None
        if good is None or good.report.critical:
            raise NothingToServe(self._nothing_to_serve(snapshot, good))

        # Serve the last good set, and say that the files on disk were refused.
        logger.error(
            "files on disk rejected at start, serving last good: version=%s serving=%s",
            snapshot.version, good.version,
        )
        self.serving = good
        served_summary = await self._serve(good, state="rejected")
        return self._reject(snapshot, look, started, extra=served_summary)

    async def reload(self, look: Look) -> AgentReport | None:
        """Look at the directory once; None when its version is the one last seen."""
        started = time.perf_counter()
        disk = read_disk(self.config_dir)
        if disk.identity == self._seen_identity and not look.forced:
            return self._unchanged(disk.version, look)

        self._seen_identity = disk.identity
        snapshot = self._evaluate(disk)
        if snapshot.report.critical:
            return self._reject(snapshot, look, started)
        return await self._apply(snapshot, look, started)

    async def _apply(self, snapshot: Snapshot, look: Look, started: float) -> AgentReport:
        self.seen_version = snapshot.version
        summary = findings_summary(snapshot.report)
        try:
            save_last_good(self.config_dir, snapshot.files)
        except (OSError, HotconfError) as exc:
            # Serving a valid configuration matters more than remembering it.
            logger.error("cannot save last-good: version=%s error=%s", snapshot.version, exc)
            summary["last_good_error"] = str(exc)
        self.serving = snapshot

        summary.update(await self._serve(snapshot, state="applied"))
        state: ReportState = "hook_failed" if summary.get("hook") else "applied"
        return self._report(snapshot.version, state, summary, look, started)

    async def _serve(self, snapshot: Snapshot, *, state: str) -> dict[str, Any]:
        """Render the configuration and run the hooks; the summary of what happened."""
        summary: dict[str, Any] = {}
        results: list[HookResult] = []
        if self.settings.render is not None:
            try:
                render_effective(snapshot.values, self.settings.render)
            except (OSError, HotconfError) as exc:
                results.append(HookResult(f"render {self.settings.render}", ok=False,
                                          error=redact(str(exc), snapshot.values)))
        results += await run_hooks(
            self.hooks,
            version=snapshot.version,
            config_dir=self.config_dir,
            state=state,
            redact=lambda text: redact(text, snapshot.values),
        )
        if results:
            summary.update(hooks_summary(results))
        return summary

    def _reject(
        self,
        snapshot: Snapshot,
        look: Look,
        started: float,
        extra: Mapping[str, Any] | None = None,
    ) -> AgentReport:
        self.seen_version = snapshot.version
        first = snapshot.report.at(Level.CRITICAL)[0]
        logger.error(
            "config rejected, keeping last good: version=%s serving=%s first=%r",
            snapshot.version, self.serving_version, finding_text(first),
        )
        summary = {**findings_summary(snapshot.report), **(extra or {})}
        return self._report(snapshot.version, "rejected", summary, look, started)

    def _unchanged(self, version: str, look: Look) -> AgentReport | None:
        if version not in look.announced or self.last_report is None:
            logger.debug("nothing new: version=%s seen=%s", version, look.describe())
            return None

        # Someone announced what we already have: say so again, freshly stamped.
        last = self.last_report
        state: ReportState = "unchanged" if last.state == "applied" else last.state
        report = replace(last, state=state, ts=time.time())
        self._deliver(report)
        logger.info("announced version already seen: version=%s state=%s", version, state)
        return report

    def _report(
        self,
        version: str,
        state: ReportState,
        summary: dict[str, Any],
        look: Look,
        started: float,
    ) -> AgentReport:
        duration_ms = (time.perf_counter() - started) * 1000
        summary.update(
            serving=self.serving_version, duration_ms=round(duration_ms, 1), seen=look.describe()
        )
        report = AgentReport(self.settings.host_id, version, state, summary)
        logger.info(
            "reload: version=%s state=%s duration_ms=%.1f serving=%s %s seen=%s",
            version, state, duration_ms, self.serving_version, short_line(summary),
            look.describe(),
        )
        self._deliver(report)
        return report

    def _deliver(self, report: AgentReport) -> None:
        self.last_report = report
        self._status.write(report, serving=self.serving_version)
        self._publish(report)

    def _evaluate(self, disk: DiskFiles) -> Snapshot:
        if disk.unusable:
            # Read again by hotconf, which says what is wrong with the file.
            return load_snapshot(self.config_dir, self._environ)
        return evaluate(disk.files, self.config_dir, self._environ)

    def _nothing_to_serve(self, snapshot: Snapshot, good: Snapshot | None) -> str:
        problems = "; ".join(finding_text(finding)
                             for finding in snapshot.report.at(Level.CRITICAL)[:3])
        where = self.config_dir
        if good is None:
            fallback = f"and there is no last good configuration in {where / LAST_GOOD_DIR}"
        else:
            first = finding_text(good.report.at(Level.CRITICAL)[0])
            fallback = f"and the last good configuration no longer validates either: {first}"
        return (
            f"cannot start: the configuration in {where} is rejected ({problems}) {fallback}. "
            f"Fix the files, check them with `hotconf validate --config-dir {where}`, "
            "then start the agent again"
        )


def secret_values(tree: Any, path: str = "") -> Iterator[str]:
    """Every secret value in a configuration tree, as text, URL passwords included."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from secret_values(value, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, list):
        for item in tree:
            yield from secret_values(item, path)
    elif tree is not None:
        text = str(tree)
        secret = text if is_secret_path(path) else _url_password(text)
        if secret is not None and len(secret) >= MIN_SECRET_LENGTH:
            yield secret


def redact(text: str, tree: Any) -> str:
    """``text`` with every secret value of ``tree``, and any URL's password, masked."""
    for secret in sorted(set(secret_values(tree)), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return mask_url_password(text)


def _url_password(text: str) -> str | None:
    # A password can hide in any URL (ollama.host: http://user:pw@host), whatever the key.
    if "@" not in text or "://" not in text:
        return None
    try:
        return urlsplit(text).password
    except ValueError:
        return None
