"""A configuration file as parsed: its tree, the line of every key, and its limits.

The readers (``hotconf.yaml_reader``, ``hotconf.json_reader``) build a ``Document``
or raise ``UnusableSource`` carrying the one CRITICAL finding that says why the
file cannot be used; ``hotconf.sources`` turns that into the finding it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hotconf.findings import Category, Finding, Level

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

KeyPath = tuple[str, ...]


@dataclass(slots=True)
class Document:
    """One parsed file: its tree, the line of every key, and the keys it repeats."""

    name: str
    tree: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    duplicates: list[Finding] = field(default_factory=list)

    def source(self, path: KeyPath) -> str:
        """``config.yaml:14`` for a key with a known line, else ``settings.json:a.b``."""
        line = self.lines.get(path)
        if line is not None:
            return f"{self.name}:{line}"
        return f"{self.name}:{'.'.join(path)}" if path else self.name


class UnusableSource(Exception):
    """The file cannot be layered; carries the one finding that says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def critical(name: str, category: Category, message: str, *, line: int | None = None,
             column: int | None = None) -> UnusableSource:
    """The error for file ``name``, pointing at its line and column when known."""
    details: dict[str, Any] = {}
    if line is not None:
        details["line"] = line
    if column is not None:
        details["column"] = column
    source = f"{name}:{line}" if line is not None else name
    return UnusableSource(Finding(Level.CRITICAL, category, message, details=details,
                                  source=source))


def not_a_mapping(name: str, found: Any) -> UnusableSource:
    """The error for a file whose top level is not a mapping of sections."""
    kind = "empty" if found is None else f"a {type(found).__name__}"
    return critical(
        name, "structure",
        f"the top level of {name} is {kind}; it must be a mapping of sections "
        "(backend:, memory:, ...)",
        line=1,
    )
