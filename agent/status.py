"""What the agent says about each reload: the report summary and status.json.

The same ``AgentReport`` (``hotconf.bus``) goes to status.json and to Redis, so
the controller reads one shape whichever way it hears back. status.json adds what
only the machine itself needs: the version being served, the watcher in use and
why, the Redis link, the agent's pid and version.

Nothing here holds a secret value: findings carry masked values, and hook output
is scrubbed of the configuration's secret values before it gets here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.hooks import HookResult
from hotconf import __version__ as hotconf_version
from hotconf.atomic import atomic_write
from hotconf.bus import AgentReport
from hotconf.errors import HotconfError
from hotconf.findings import Finding, Level, Report
from hotconf.secrets import mask_url_password

logger = logging.getLogger(__name__)

STATUS_FILE = Path(".hotconf") / "status.json"
# Enough findings for an operator to see what is wrong; the rest are counted.
FINDINGS_IN_SUMMARY = 5


def finding_text(finding: Finding) -> str:
    """A finding as one line, with any password inside a quoted URL masked.

    Validation quotes the value it refuses ("'http://bot:pw@host' is not a valid
    URL"), and a URL can carry a password whatever its key is called.
    """
    return mask_url_password(str(finding))


def findings_summary(report: Report) -> dict[str, Any]:
    """Counts by level and the worst findings first, as short dicts."""
    worst_first = sorted(report.findings, key=lambda finding: -finding.level)
    serious = [finding for finding in worst_first if finding.level >= Level.WARNING]
    summary: dict[str, Any] = dict(report.summary())
    summary["findings"] = [
        {
            "level": finding.level.label,
            "path": finding.path,
            "source": finding.source,
            "message": mask_url_password(finding.message),
        }
        for finding in serious[:FINDINGS_IN_SUMMARY]
    ]
    critical = report.at(Level.CRITICAL)
    if critical:
        summary["critical_findings"] = [finding_text(finding)
                                        for finding in critical[:FINDINGS_IN_SUMMARY]]
    return summary


def hooks_summary(results: Sequence[HookResult]) -> dict[str, Any]:
    """The hooks' results; ``hook`` names the first failure in one line."""
    summary: dict[str, Any] = {"hooks": [result.to_dict() for result in results]}
    failed = [result for result in results if not result.ok]
    if failed:
        summary["hook"] = failed[0].describe()
        summary["exit_code"] = failed[0].exit_code
    return summary


def short_line(summary: dict[str, Any]) -> str:
    """``critical=1 errors=0 warnings=2`` for the reload's log line."""
    return " ".join(
        f"{key}={summary[key]}" for key in ("critical", "errors", "warnings") if key in summary
    )


@dataclass(slots=True)
class StatusFile:
    """Writes ``<config_dir>/.hotconf/status.json`` atomically after every attempt."""

    config_dir: Path
    watcher: dict[str, str] = field(default_factory=dict)
    bus: dict[str, Any] = field(default_factory=dict)
    _last: tuple[AgentReport, str | None] | None = None

    @property
    def path(self) -> Path:
        return self.config_dir / STATUS_FILE

    def write(self, report: AgentReport, *, serving: str | None) -> None:
        """Write the report; a failure is logged, never raised (reloads go on)."""
        self._last = (report, serving)
        body = {
            **report.to_dict(),
            "time": datetime.fromtimestamp(report.ts, UTC).isoformat(),
            "serving": serving,
            "agent_version": hotconf_version,
            "pid": os.getpid(),
            "watcher": dict(self.watcher),
            "bus": dict(self.bus),
        }
        data = json.dumps(body, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        try:
            # Never create the config directory itself: if it is gone, so is the status.
            self.path.parent.mkdir(exist_ok=True)
            atomic_write(self.path, data, mode=0o644)
        except (OSError, HotconfError) as exc:
            logger.error("cannot write status: path=%s error=%s", self.path, exc)

    def rewrite(self) -> None:
        """Write the last report again with the current watcher and bus context."""
        if self._last is not None:
            report, serving = self._last
            self.write(report, serving=serving)

    def read(self) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return loaded
