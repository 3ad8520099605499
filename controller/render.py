"""Text for people: the validation report and the explain stack.

Plain text with colour only on a terminal, so piped output stays greppable.
"""

from __future__ import annotations

import json
from typing import Any

import click

from hotconf.findings import Level, Report
from hotconf.snapshot import Explanation

_LEVEL_COLOURS = {
    Level.CRITICAL: "red",
    Level.ERROR: "red",
    Level.WARNING: "yellow",
    Level.INFO: "cyan",
}


def report_text(report: Report, *, title: str, colour: bool) -> str:
    """The findings grouped by level, worst first, with a summary line."""
    lines = [title]
    for level in sorted(Level, reverse=True):
        findings = report.at(level)
        if not findings:
            continue
        heading = f"{level.name} ({len(findings)})"
        lines.append(click.style(heading, fg=_LEVEL_COLOURS[level], bold=True) if colour
                     else heading)
        lines.extend(f"  {finding}" for finding in findings)
    summary = report.summary()
    if summary["total"] == 0:
        lines.append("no findings: the configuration is valid")
    else:
        lines.append(
            f"summary: {summary['critical']} critical, {summary['errors']} errors, "
            f"{summary['warnings']} warnings, {summary['info']} info"
        )
    return "\n".join(lines)


def explanation_text(explanations: list[Explanation]) -> str:
    """Each value, its source, and the values it shadows beneath it."""
    lines = []
    for item in explanations:
        shown = item.to_dict()
        if not item.is_set:
            lines.append(f"{item.path} is not set (the schema gives it no default)")
            continue
        lines.append(f"{item.path} = {_scalar(shown['value'])}")
        lines.append(f"  from     {shown['source']}")
        for below in shown["shadowed"]:
            lines.append(f"  shadows  {below['source']} = {_scalar(below['value'])}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
