"""The entry point for a service that embeds hotconf.

    from hotconf import Config

    config = Config.load("/etc/autobot")          # refuses a CRITICAL configuration
    port = config.get("backend.server_port")
    config.on_change(lambda old, new: restart_listener(new.get("backend.server_port")))
    config.reload()                               # keeps the old one if the new is CRITICAL

``Config`` is the seed's startup gate: it never hands out a configuration with a
CRITICAL finding. At startup that is an exception carrying the findings; on
reload the last good configuration stays and the rejected report is returned.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotconf.envmap import DEFAULT_PREFIX
from hotconf.errors import ConfigRejected
from hotconf.findings import Level, Report
from hotconf.snapshot import Snapshot, load_snapshot

logger = logging.getLogger(__name__)

ChangeCallback = Callable[[Snapshot, Snapshot], None]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one reload did: applied a new version, found nothing new, or rejected it."""

    state: str  # "applied", "unchanged" or "rejected"
    version: str
    report: Report


def _refusal(snapshot: Snapshot) -> ConfigRejected:
    critical = snapshot.report.at(Level.CRITICAL)
    lines = "; ".join(str(finding) for finding in critical[:5])
    more = f" (and {len(critical) - 5} more)" if len(critical) > 5 else ""
    return ConfigRejected(
        f"configuration in {snapshot.config_dir} has {len(critical)} CRITICAL finding(s): "
        f"{lines}{more}. Fix them, then run `hotconf validate --config-dir "
        f"{snapshot.config_dir}` to check",
        critical,
    )


class Config:
    """A validated configuration that can be reloaded and observed."""

    def __init__(self, snapshot: Snapshot, environ: Mapping[str, str] | None,
                 prefix: str) -> None:
        self._snapshot = snapshot
        self._environ = environ
        self._prefix = prefix
        self._callbacks: list[ChangeCallback] = []
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config_dir: str | Path, environ: Mapping[str, str] | None = None, *,
             prefix: str = DEFAULT_PREFIX) -> Config:
        """Load and validate ``config_dir``; raise ConfigRejected on any CRITICAL finding.

        ``environ`` defaults to ``os.environ``; pass a mapping to control overrides.
        """
        snapshot = load_snapshot(Path(config_dir), environ, prefix=prefix)
        if snapshot.report.critical:
            raise _refusal(snapshot)
        _log_report(snapshot)
        return cls(snapshot, environ, prefix)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def report(self) -> Report:
        """The validation report of the configuration being served."""
        return self._snapshot.report

    @property
    def version(self) -> str:
        return self._snapshot.version

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path, or ``default`` when it is not set."""
        return self._snapshot.get(path, default)

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(old, new)`` after each applied reload; returns an unsubscribe."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def reload(self) -> ReloadResult:
        """Re-read the files; apply them unless CRITICAL, and tell the callbacks."""
        with self._lock:
            old = self._snapshot
            new = load_snapshot(old.config_dir, self._environ, prefix=self._prefix)
            if new.report.critical:
                logger.error("reload rejected version=%s critical=%d; keeping version=%s",
                             new.version, new.report.count(Level.CRITICAL), old.version)
                return ReloadResult("rejected", new.version, new.report)
            if new.version == old.version and new.values == old.values:
                return ReloadResult("unchanged", new.version, new.report)
            self._snapshot = new

        logger.info("configuration reloaded version=%s previous=%s", new.version, old.version)
        for callback in list(self._callbacks):
            try:
                callback(old, new)
            except Exception:
                logger.exception("change callback %r failed; the new configuration stays",
                                 callback)
        return ReloadResult("applied", new.version, new.report)


def _log_report(snapshot: Snapshot) -> None:
    summary = snapshot.report.summary()
    logger.info("configuration loaded version=%s errors=%d warnings=%d info=%d",
                snapshot.version, summary["errors"], summary["warnings"], summary["info"])
    for finding in snapshot.report.at(Level.ERROR):
        logger.warning("configuration error: %s", finding)
