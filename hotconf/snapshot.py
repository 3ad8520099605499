"""One evaluation of a configuration directory: layered, validated, versioned.

``evaluate`` is the single path from file bytes and an environment to an effective
configuration and its findings. The CLI, the agent, sync-to-base and the HTTP API
all go through it, so they cannot disagree about what a configuration means.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotconf.envmap import DEFAULT_PREFIX, AppliedOverride, apply_environment
from hotconf.findings import Finding, Report
from hotconf.layers import Layered, Origin
from hotconf.schema import defaults_tree
from hotconf.secrets import mask_tree, mask_value
from hotconf.sources import Document, missing_file_finding, parse_document, read_source
from hotconf.validation import (
    check_conflicts,
    check_required_sections,
    check_structure,
    check_values,
)
from hotconf.version import BASE_FILE, MANAGED_FILES, SETTINGS_FILE, content_version

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Explanation:
    """The effective value at one path, where it came from, and what it shadows."""

    path: str
    value: Any
    origin: Origin | None
    shadowed: list[tuple[Any, Origin]]
    is_set: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "set": self.is_set,
            "value": mask_value(self.path, self.value),
            "source": str(self.origin) if self.origin else None,
            "shadowed": [{"value": mask_value(self.path, value), "source": str(origin)}
                         for value, origin in self.shadowed],
        }


@dataclass(slots=True)
class Snapshot:
    """An effective configuration with its findings and content version."""

    config_dir: Path
    version: str
    files: dict[str, bytes]
    layered: Layered
    report: Report
    documents: dict[str, Document] = field(default_factory=dict)
    overrides: list[AppliedOverride] = field(default_factory=list)

    @property
    def values(self) -> dict[str, Any]:
        """The effective configuration tree, secrets included."""
        return self.layered.tree

    def get(self, path: str, default: Any = _MISSING) -> Any:
        """The value at a dotted path; ``default`` (or KeyError) when it is not set."""
        try:
            return self.layered.get(tuple(path.split(".")))
        except KeyError:
            if default is _MISSING:
                raise KeyError(f"{path} is not set in {self.config_dir}") from None
            return default

    def masked(self) -> dict[str, Any]:
        """The effective configuration with every secret masked."""
        return mask_tree(self.layered.tree)  # type: ignore[no-any-return]

    def explain(self, path: str) -> list[Explanation]:
        """The value at ``path`` and its stack; for a mapping, one entry per leaf below."""
        key_path = tuple(path.split("."))
        value = self.get(path, None)
        if isinstance(value, dict):
            return [self._explain_leaf(leaf_path) for leaf_path in sorted(self.layered.origins)
                    if leaf_path[: len(key_path)] == key_path
                    and not isinstance(self.layered.get(leaf_path), dict)]
        return [self._explain_leaf(key_path)]

    def _explain_leaf(self, key_path: tuple[str, ...]) -> Explanation:
        dotted = ".".join(key_path)
        value = self.get(dotted, None)
        return Explanation(
            dotted, value, self.layered.origins.get(key_path),
            list(self.layered.shadowed.get(key_path, [])),
            is_set=key_path in self.layered.origins,
        )


def evaluate(files: Mapping[str, bytes], config_dir: Path,
             environ: Mapping[str, str] | None = None, *,
             prefix: str = DEFAULT_PREFIX) -> Snapshot:
    """Layer and validate the given file contents with an environment.

    ``files`` maps the managed file names that exist to their bytes; a missing
    config.yaml is a CRITICAL finding. ``environ`` defaults to ``os.environ``.
    Bad input never raises: it becomes findings.
    """
    parsed: dict[str, Document | Finding | None] = {}
    for name in MANAGED_FILES:
        if name in files:
            parsed[name] = parse_document(name, files[name])
        elif name == BASE_FILE:
            parsed[name] = missing_file_finding(config_dir / name)
    return _evaluate_parsed(parsed, dict(files), config_dir, environ, prefix)


def load_snapshot(config_dir: Path, environ: Mapping[str, str] | None = None, *,
                  prefix: str = DEFAULT_PREFIX) -> Snapshot:
    """Read the managed files of ``config_dir`` and evaluate them.

    Each file is read once, so the version always describes the bytes validated.
    """
    parsed: dict[str, Document | Finding | None] = {}
    files: dict[str, bytes] = {}
    for name in MANAGED_FILES:
        raw = read_source(config_dir / name, required=name == BASE_FILE)
        if isinstance(raw, bytes):
            files[name] = raw
            parsed[name] = parse_document(name, raw)
        else:
            parsed[name] = raw
    return _evaluate_parsed(parsed, files, config_dir, environ, prefix)


def _evaluate_parsed(parsed: Mapping[str, Document | Finding | None], files: dict[str, bytes],
                     config_dir: Path, environ: Mapping[str, str] | None,
                     prefix: str) -> Snapshot:
    report = Report()
    documents: dict[str, Document] = {}
    for name in MANAGED_FILES:
        result = parsed.get(name)
        if isinstance(result, Finding):
            report.findings.append(result)
        elif result is not None:
            documents[name] = result
            report.extend(result.duplicates)

    layered = Layered()
    layered.apply_defaults(defaults_tree())
    for document in documents.values():
        layered.apply_document(document)

    base_usable = BASE_FILE in documents
    if base_usable:
        report.extend(check_required_sections(
            [doc.tree for doc in documents.values()], list(documents.values())))

    overrides, env_findings = apply_environment(
        layered, os.environ if environ is None else environ, prefix)

    structure_findings, bad_types = check_structure(layered)
    report.extend(structure_findings)
    report.extend(check_values(layered, bad_types, config_dir))
    report.extend(check_conflicts(documents.get(BASE_FILE), documents.get(SETTINGS_FILE)))
    report.extend(env_findings)

    return Snapshot(
        config_dir=config_dir,
        version=content_version(files),
        files=files,
        layered=layered,
        report=report,
        documents=documents,
        overrides=overrides,
    )
