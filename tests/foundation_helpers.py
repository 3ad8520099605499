"""Shared helpers of the foundation's tests (issue 2): configs, evaluation, findings.

The tests evaluate real bytes and real directories; nothing here stands in for the
code under test. ``clean_environment`` keeps a developer's own AUTOBOT_* or
HOTCONF_* variables from leaking into tests that read ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hotconf.findings import Finding, Level
from hotconf.schema import Leaf
from hotconf.snapshot import Snapshot, evaluate

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPO_ROOT / "examples" / "autobot"
DOCS_ENVIRONMENT = REPO_ROOT / "docs" / "environment.md"

# Every required section, a few values each; the line numbers are relied on by
# provenance tests: backend.server_port is on line 2, ui.theme on line 7.
MINIMAL_CONFIG = """\
backend:
  server_port: 8001
memory:
  redis:
    port: 6379
ui:
  theme: auto
  font_size: 14
chat:
  max_messages: 100
logging:
  level: INFO
"""


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every AUTOBOT*/HOTCONF* variable of the caller's environment."""
    for name in list(os.environ):
        if name.startswith(("AUTOBOT", "HOTCONF", "MYBOT")):
            monkeypatch.delenv(name)


def evaluate_texts(config_yaml: str | bytes | None = MINIMAL_CONFIG,
                   settings_json: str | bytes | None = None,
                   environ: Mapping[str, str] | None = None, *,
                   config_dir: Path | None = None, prefix: str = "AUTOBOT") -> Snapshot:
    """Evaluate file contents given as text, with an explicit (default empty) environment."""
    files: dict[str, bytes] = {}
    for name, content in (("config.yaml", config_yaml), ("settings.json", settings_json)):
        if content is not None:
            files[name] = content.encode() if isinstance(content, str) else content
    directory = config_dir if config_dir is not None else Path("/nonexistent/hotconf-tests")
    return evaluate(files, directory, {} if environ is None else environ, prefix=prefix)


def write_config_dir(directory: Path, config_yaml: str | bytes | None = MINIMAL_CONFIG,
                     settings_json: str | bytes | None = None) -> Path:
    """Write config.yaml (and settings.json) into ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in (("config.yaml", config_yaml), ("settings.json", settings_json)):
        target = directory / name
        if content is None:
            target.unlink(missing_ok=True)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return directory


def findings_of(snapshot: Snapshot, *, category: str | None = None, level: Level | None = None,
                path: str | None = None) -> list[Finding]:
    """The findings of a snapshot that match every criterion given."""
    return [finding for finding in snapshot.report
            if (category is None or finding.category == category)
            and (level is None or finding.level is level)
            and (path is None or finding.path == path)]


def only_finding(snapshot: Snapshot) -> Finding:
    """The single finding of a snapshot; fails listing them all when there are others."""
    findings = list(snapshot.report)
    assert len(findings) == 1, "expected exactly one finding, got:\n" + "\n".join(
        f"  {finding.level.name} {finding}" for finding in findings)
    return findings[0]


def describe(snapshot: Snapshot) -> str:
    """Every finding on its own line, for assertion messages."""
    return "\n".join(f"{finding.level.name} {finding.category} {finding}"
                     for finding in snapshot.report) or "(no findings)"


def sample_value(leaf: Leaf) -> tuple[str, Any]:
    """A valid value for ``leaf`` that differs from its default: (env text, typed value)."""
    if leaf.type == "bool":
        return ("false", False) if leaf.default else ("true", True)
    if leaf.type == "int":
        low = int(leaf.minimum) if leaf.minimum is not None else 0
        value = low if leaf.default != low else low + 1
        return str(value), value
    if leaf.type == "float":
        value = float(leaf.maximum) if leaf.maximum is not None else 1.5
        return str(value), value
    if leaf.type == "list":
        return "alpha, beta", ["alpha", "beta"]
    if leaf.type == "url_list":
        return '["http://one.example:8080", "https://two.example"]', [
            "http://one.example:8080", "https://two.example"]
    if leaf.type == "url":
        return "http://env.example:9999", "http://env.example:9999"
    if leaf.type == "choice":
        choice = next(choice for choice in leaf.choices if choice != leaf.default)
        return choice, choice
    if leaf.type == "path":
        return "env-chosen/target", "env-chosen/target"
    return "from-the-environment", "from-the-environment"
