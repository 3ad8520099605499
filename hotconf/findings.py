"""Findings: what validation says about a configuration.

A finding has a level, a category, a message, the dotted path it concerns, the
value (already masked when the key is secret), details and the source it points
at. A ``Report`` is the list of findings of one validation run, with the summary
and the JSON body the API and ``hotconf validate --json`` share.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Category = Literal[
    "structure", "type", "range", "url", "path", "conflict", "override", "unknown", "syntax", "env"
]


class Level(enum.IntEnum):
    """How bad a finding is; CRITICAL blocks startup and reload."""

    INFO = 10
    WARNING = 20
    ERROR = 30
    CRITICAL = 40

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing validation noticed, and where."""

    level: Level
    category: Category
    message: str
    path: str = ""
    value: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def location(self) -> str:
        """``config.yaml:14: backend.server_port`` or as much of it as is known."""
        parts = [part for part in (self.source, self.path) if part]
        return ": ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.label,
            "category": self.category,
            "message": self.message,
            "path": self.path,
            "value": self.value,
            "details": self.details,
            "source": self.source,
        }

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message


@dataclass(slots=True)
class Report:
    """The findings of one validation run, in the order they were found."""

    findings: list[Finding] = field(default_factory=list)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def extend(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    def count(self, level: Level) -> int:
        return sum(1 for finding in self.findings if finding.level is level)

    def at(self, level: Level) -> list[Finding]:
        return [finding for finding in self.findings if finding.level is level]

    @property
    def critical(self) -> bool:
        """True when any finding blocks startup and reload."""
        return any(finding.level is Level.CRITICAL for finding in self.findings)

    @property
    def worst(self) -> Level | None:
        return max((finding.level for finding in self.findings), default=None)

    def summary(self) -> dict[str, int]:
        return {
            "total": len(self.findings),
            "critical": self.count(Level.CRITICAL),
            "errors": self.count(Level.ERROR),
            "warnings": self.count(Level.WARNING),
            "info": self.count(Level.INFO),
        }

    def to_dict(self) -> dict[str, Any]:
        """The body of ``GET /api/config/validate`` and ``hotconf validate --json``."""
        return {
            "status": "unhealthy" if self.critical else "healthy",
            "timestamp": self.timestamp.isoformat(),
            "summary": self.summary(),
            "issues": [finding.to_dict() for finding in self.findings],
        }
