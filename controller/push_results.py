"""What a push did: one result per host and the summary of the run, ready for JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from hotconf.findings import Report

Outcome = Literal["ok", "applied", "changed", "rejected", "hook_failed", "stale",
                  "unreachable", "failed"]
SUCCESS: frozenset[str] = frozenset({"ok", "applied", "changed"})


@dataclass(slots=True)
class HostResult:
    """What happened on one host."""

    name: str
    outcome: Outcome
    reason: str = ""
    before: str | None = None
    after: str | None = None
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    diff: str = ""
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCESS

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.name, "result": self.outcome, "reason": self.reason,
            "version_before": self.before, "version_after": self.after,
            "seconds": round(self.seconds, 3), "summary": self.summary,
            **({"diff": self.diff} if self.diff else {}),
        }


@dataclass(slots=True)
class PushResult:
    """The whole run: the version pushed, each host's result, and who was not started."""

    version: str
    results: list[HostResult]
    untouched: list[str]
    stopped_because: str = ""
    local_report: Report | None = None

    @property
    def succeeded(self) -> bool:
        return not self.untouched and all(result.succeeded for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return {
            "version": self.version,
            "ok": self.succeeded,
            "hosts": [result.to_dict() for result in self.results],
            "untouched": self.untouched,
            "stopped_because": self.stopped_because or None,
            "counts": counts,
            "local_validation": (self.local_report.summary() if self.local_report is not None
                                 else None),
        }


# (host, phase, result): the result comes with the host's last phase only.
