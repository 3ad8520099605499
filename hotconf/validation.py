"""The checks that turn a layered configuration into findings.

Order matters: structure first (a missing required section is CRITICAL), then
types (a value of the wrong type is an ERROR and its range is not checked), then
ranges, choices, URLs and file paths, then conflicts between the sources.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

from hotconf.findings import Finding, Level
from hotconf.layers import Layered
from hotconf.schema import (
    FREEFORM_SECTIONS,
    LEAVES,
    LEAVES_BY_PATH,
    REQUIRED_SECTIONS,
    URL_SCHEMES,
    Leaf,
    children_of,
    leaf_value_validator,
    structure_schema,
)
from hotconf.secrets import mask_url_password, mask_value
from hotconf.sources import Document, KeyPath


def _source(layered: Layered, path: KeyPath) -> str | None:
    origin = layered.origins.get(path)
    return str(origin) if origin is not None else None


def _type_name(value: Any) -> str:
    if value is None:
        return "an empty value"
    return {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
            "list": "a list", "dict": "a mapping"}.get(type(value).__name__,
                                                       type(value).__name__)


def check_required_sections(file_trees: list[dict[str, Any]],
                            sources: list[Document]) -> list[Finding]:
    """Each required section must come from a file and be a mapping."""
    findings = []
    for section in REQUIRED_SECTIONS:
        present = [tree[section] for tree in file_trees if section in tree]
        if not present:
            findings.append(Finding(
                Level.CRITICAL, "structure",
                f"required section {section!r} is missing: add a '{section}:' mapping "
                "to config.yaml",
                path=section, source=sources[0].name if sources else "config.yaml",
            ))
        elif not isinstance(present[-1], dict):
            document = next(doc for doc in reversed(sources) if section in doc.tree)
            findings.append(Finding(
                Level.CRITICAL, "structure",
                f"section {section!r} must be a mapping, not {_type_name(present[-1])}",
                path=section, value=mask_value(section, present[-1]),
                source=document.source((section,)),
            ))
    return findings


def check_structure(layered: Layered) -> tuple[list[Finding], set[str]]:
    """Unknown keys and wrong types; returns the findings and the paths of bad types."""
    findings: list[Finding] = []
    bad_types: set[str] = set()
    try:
        structure_schema()(layered.tree)
    except vol.MultipleInvalid as invalid:
        for error in invalid.errors:
            path = tuple(str(part) for part in error.path)
            dotted = ".".join(path)
            if path and path[0] in REQUIRED_SECTIONS and len(path) == 1 \
                    and error.error_message != "extra keys not allowed":
                continue  # a required section of the wrong kind: already CRITICAL
            if error.error_message == "extra keys not allowed":
                findings.append(_unknown_key(layered, path))
            else:
                bad_types.add(dotted)
                value = _value_at(layered, path)
                findings.append(Finding(
                    Level.ERROR, "type",
                    f"must be {_expected(dotted)}, not {_type_name(value)} "
                    f"({mask_value(dotted, value)!r})",
                    path=dotted, value=mask_value(dotted, value),
                    source=_source(layered, path),
                ))
    return findings, bad_types


def _expected(dotted: str) -> str:
    leaf = LEAVES_BY_PATH.get(dotted)
    if leaf is None:
        return "a mapping"
    return {"int": "an integer", "float": "a number", "bool": "true or false",
            "list": "a list of strings", "url_list": "a list of URLs"}.get(leaf.type, "a string")


def _value_at(layered: Layered, path: KeyPath) -> Any:
    try:
        return layered.get(path)
    except KeyError:
        return None


def _unknown_key(layered: Layered, path: KeyPath) -> Finding:
    parent = ".".join(path[:-1])
    dotted = ".".join(path)
    known = children_of(parent)
    close = difflib.get_close_matches(path[-1], known, n=1, cutoff=0.6)
    hint = f"; did you mean {'.'.join((*path[:-1], close[0]))!r}?" if close else \
        f"; known keys here: {', '.join(known)}" if known else ""
    return Finding(
        Level.WARNING, "unknown",
        f"unknown key {dotted!r}{hint}",
        path=dotted, details={"suggestion": close[0]} if close else {},
        source=_source(layered, path),
    )


def check_values(layered: Layered, bad_types: set[str], config_dir: Path) -> list[Finding]:
    """Ranges, choices, URLs and file paths of every leaf whose type is right."""
    findings: list[Finding] = []
    for leaf in LEAVES:
        if leaf.path in bad_types:
            continue
        path = tuple(leaf.path.split("."))
        try:
            value = layered.get(path)
        except KeyError:
            continue
        if value is None:
            continue
        source = _source(layered, path)
        problem = value_problem(leaf, value)
        if problem is not None:
            category, message = problem
            findings.append(Finding(
                Level.ERROR, category, message, path=leaf.path,
                value=mask_value(leaf.path, value), source=source,
            ))
        elif leaf.type == "path" and layered.origins[path].kind != "default":
            # The service creates its default directories itself; only a path
            # someone chose is checked against this machine.
            findings.extend(_path_findings(leaf, value, config_dir, source))
    return findings


def value_problem(leaf: Leaf, value: Any) -> tuple[Any, str] | None:
    """Why a value of the right type is not acceptable, as (category, message)."""
    try:
        leaf_value_validator(leaf)(value)
    except vol.Invalid as invalid:
        # vol.All wraps the failing check in MultipleInvalid: look at the check itself.
        first = invalid.errors[0] if isinstance(invalid, vol.MultipleInvalid) else invalid
        if isinstance(first, vol.RangeInvalid):
            return "range", _range_message(leaf, value)
        return "range", f"{value!r} {first.error_message}"
    if leaf.type == "url":
        return _url_problem(value)
    if leaf.type == "url_list":
        for item in value:
            problem = _url_problem(item)
            if problem is not None:
                return problem
    return None


def _range_message(leaf: Leaf, value: Any) -> str:
    if leaf.maximum is not None and value > leaf.maximum:
        return f"{value} is above {leaf.maximum:g} (allowed {leaf.minimum:g} to {leaf.maximum:g})"
    return f"{value} is below {leaf.minimum:g} (allowed {leaf.minimum:g} to {leaf.maximum:g})"


def _url_problem(value: str) -> tuple[Any, str] | None:
    shown_url = mask_url_password(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return "url", f"{shown_url!r} is not a valid URL: {exc}"
    if parts.scheme not in URL_SCHEMES:
        shown = parts.scheme or "no scheme"
        return "url", (f"{shown_url!r} has {shown!r}; use one of "
                       f"{', '.join(s + '://' for s in URL_SCHEMES)}")
    if not parts.hostname:
        return "url", f"{shown_url!r} has no host: write it as {parts.scheme}://HOST[:PORT]"
    if port == 0:
        return "url", f"{shown_url!r} has port 0"
    return None


def _path_findings(leaf: Leaf, value: str, config_dir: Path,
                   source: str | None) -> Iterator[Finding]:
    target = Path(value) if os.path.isabs(value) else config_dir / value
    checked = target if leaf.path_kind == "dir" and target.exists() else target.parent

    if not checked.exists():
        yield Finding(
            Level.WARNING, "path",
            f"directory {checked} does not exist: create it "
            f"(mkdir -p {checked}) or change the path",
            path=leaf.path, value=value, details={"resolved": str(target)}, source=source,
        )
    elif not checked.is_dir():
        yield Finding(
            Level.ERROR, "path", f"{checked} is not a directory",
            path=leaf.path, value=value, details={"resolved": str(target)}, source=source,
        )
    elif not os.access(checked, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        denied = target if target.exists() and not os.access(target, os.W_OK) else checked
        yield Finding(
            Level.ERROR, "path",
            f"{denied} is not writable by this user: fix its permissions",
            path=leaf.path, value=value, details={"resolved": str(target)}, source=source,
        )


def check_conflicts(base: Document | None, settings: Document | None) -> list[Finding]:
    """Where settings.json replaces a list of config.yaml, or repeats its value."""
    if base is None or settings is None:
        return []
    findings: list[Finding] = []
    for path, value in _leaves(settings.tree, ()):
        if path[0] in FREEFORM_SECTIONS:
            continue
        try:
            base_value = _get(base.tree, path)
        except KeyError:
            continue
        dotted = ".".join(path)
        where = {"config.yaml": base.source(path), "settings.json": settings.source(path)}
        if isinstance(value, list) and isinstance(base_value, list) and value != base_value:
            findings.append(Finding(
                Level.WARNING, "conflict",
                f"settings.json replaces the whole list {dotted} of config.yaml "
                f"({len(base_value)} items -> {len(value)} items); lists are not merged",
                path=dotted, value=mask_value(dotted, value),
                details={"base": mask_value(dotted, base_value), **where},
                source=settings.source(path),
            ))
        elif value == base_value and type(value) is type(base_value):
            findings.append(Finding(
                Level.INFO, "override",
                f"settings.json repeats the value config.yaml already has for {dotted}",
                path=dotted, value=mask_value(dotted, value), details=where,
                source=settings.source(path),
            ))
    return findings


def _leaves(tree: dict[str, Any], prefix: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    for key, value in tree.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            yield from _leaves(value, path)
        else:
            yield path, value


def _get(tree: dict[str, Any], path: KeyPath) -> Any:
    node: Any = tree
    for part in path:
        if not isinstance(node, dict):
            raise KeyError(part)
        node = node[part]
    return node
