"""Environment variables that override configuration values.

Every leaf of the schema can be set by its nested name, ``AUTOBOT__SECTION__KEY``
(``AUTOBOT__BACKEND__LLM__OLLAMA__HOST``); most also by the seed's short name
(``AUTOBOT_BACKEND_PORT``). Values arrive as strings and are cast by the leaf's type
before they apply; a value that does not cast is reported, never applied.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hotconf.findings import Finding, Level
from hotconf.layers import Layered, Origin
from hotconf.schema import LEAVES, Leaf
from hotconf.secrets import is_secret_path, mask_value
from hotconf.validation import value_problem

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "AUTOBOT"

_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class CastError(ValueError):
    """A variable's text is not a value of the leaf's type."""


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One variable name and the leaf it sets."""

    name: str
    leaf: Leaf
    nested: bool


def nested_name(path: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``backend.server_port`` -> ``AUTOBOT__BACKEND__SERVER_PORT``."""
    return "__".join([prefix, *(part.upper() for part in path.split("."))])


def short_name(leaf: Leaf, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The seed's name of a leaf under another prefix (``AUTOBOT_X`` -> ``PREFIX_X``)."""
    if leaf.env is None:
        return None
    return prefix + leaf.env.removeprefix(DEFAULT_PREFIX)


def variables(prefix: str = DEFAULT_PREFIX) -> list[EnvVar]:
    """Every variable the schema accepts: short names first, then nested names."""
    found = [EnvVar(name, leaf, False) for leaf in LEAVES
             if (name := short_name(leaf, prefix)) is not None]
    found += [EnvVar(nested_name(leaf.path, prefix), leaf, True) for leaf in LEAVES]
    return found


_VARIABLE_CACHE: dict[str, dict[str, EnvVar]] = {}


def variables_by_name(prefix: str = DEFAULT_PREFIX) -> dict[str, EnvVar]:
    table = _VARIABLE_CACHE.get(prefix)
    if table is None:
        table = {var.name: var for var in variables(prefix)}
        _VARIABLE_CACHE[prefix] = table
    return table


def cast(leaf: Leaf, text: str) -> Any:
    """Cast an environment string to the leaf's type, or raise CastError saying why.

    >>> from hotconf.schema import LEAVES_BY_PATH
    >>> cast(LEAVES_BY_PATH["backend.streaming"], "Off")
    False
    """
    stripped = text.strip()
    if leaf.type == "bool":
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise CastError(f"{text!r} is not a boolean: use true/false, 1/0, yes/no or on/off")
    if leaf.type == "int":
        # int() also takes "8_001" and non-ASCII digits; a deployment file should not.
        if not _INTEGER.fullmatch(stripped):
            raise CastError(f"{text!r} is not a whole number")
        return int(stripped)
    if leaf.type == "float":
        try:
            number = float(stripped)
        except ValueError:
            raise CastError(f"{text!r} is not a number") from None
        if not math.isfinite(number) or "_" in stripped:
            raise CastError(f"{text!r} is not a finite decimal number")
        return number
    if leaf.type in ("list", "url_list"):
        return _cast_list(text)
    return text


def _cast_list(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CastError(f"{text!r} starts like a JSON list but is not one: {exc.msg}") \
                from None
        if not all(isinstance(item, str) for item in value):
            raise CastError(f"{text!r}: every item of the list must be a string")
        return list(value)
    if not stripped:
        return []
    return [item.strip() for item in stripped.split(",") if item.strip()]


def present(environ: Mapping[str, str], prefix: str = DEFAULT_PREFIX) -> list[tuple[EnvVar, str]]:
    """The schema's variables that are set in ``environ``, in table order."""
    table = variables_by_name(prefix)
    return [(table[name], environ[name]) for name in table if name in environ]


def unknown_nested(environ: Mapping[str, str], prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Variables in the nested form (``PREFIX__...``) that name no leaf: likely typos."""
    table = variables_by_name(prefix)
    marker = prefix + "__"
    return sorted(name for name in environ if name.startswith(marker) and name not in table)


# --- applying the environment layer --------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppliedOverride:
    """An environment variable whose value now stands at its leaf."""

    variable: str
    path: str
    value: Any
    file_value: Any
    file_source: str | None


def apply_environment(layered: Layered, environ: Mapping[str, str],
                      prefix: str = DEFAULT_PREFIX) -> tuple[list[AppliedOverride], list[Finding]]:
    """Cast, check and apply every schema variable set in ``environ``.

    A value that does not cast or fails its leaf's checks is an ERROR finding and is
    not applied. Where both a leaf's short and nested names are set, the nested
    name wins and a WARNING says so. An overridden file value that differs is INFO.
    """
    findings: list[Finding] = []
    applied: list[AppliedOverride] = []
    chosen: dict[str, tuple[EnvVar, str]] = {}

    for var, text in present(environ, prefix):
        earlier = chosen.get(var.leaf.path)
        if earlier is not None:
            findings.append(Finding(
                Level.WARNING, "env",
                f"both {earlier[0].name} and {var.name} set {var.leaf.path}; "
                f"{var.name} wins: unset one of them",
                path=var.leaf.path, source=var.name,
            ))
        chosen[var.leaf.path] = (var, text)

    for var, text in chosen.values():
        override = _apply_one(layered, var, text, findings)
        if override is not None:
            applied.append(override)

    for name in unknown_nested(environ, prefix):
        findings.append(_unknown_variable(name, prefix))

    if applied:
        logger.info("applied %d environment overrides", len(applied))
        for override in applied:
            logger.debug("override %s=%r path=%s", override.variable,
                         mask_value(override.path, override.value), override.path)
    return applied, findings


def _apply_one(layered: Layered, var: EnvVar, text: str,
               findings: list[Finding]) -> AppliedOverride | None:
    leaf = var.leaf
    shown = mask_value(leaf.path, text)
    try:
        value = cast(leaf, text)
    except CastError as exc:
        message = str(exc) if not is_secret_path(leaf.path) else "the value does not cast"
        findings.append(Finding(
            Level.ERROR, "env",
            f"{var.name} is not applied: {message} ({leaf.path} is {leaf.type_name()})",
            path=leaf.path, value=shown, source=var.name,
        ))
        return None

    problem = value_problem(leaf, value)
    if problem is not None:
        findings.append(Finding(
            Level.ERROR, "env", f"{var.name} is not applied: {problem[1]}",
            path=leaf.path, value=shown, details={"check": problem[0]}, source=var.name,
        ))
        return None

    path = tuple(leaf.path.split("."))
    try:
        file_value = layered.get(path)
    except KeyError:
        file_value = None
    previous = layered.origins.get(path)
    why_not = layered.set_value(path, value, Origin("env", var.name))
    if why_not is not None:
        findings.append(Finding(
            Level.ERROR, "env", f"{var.name} is not applied: {why_not}",
            path=leaf.path, value=shown, source=var.name,
        ))
        return None

    file_source = str(previous) if previous is not None and previous.kind == "file" else None
    if file_source is not None and file_value != value:
        findings.append(Finding(
            Level.INFO, "override",
            f"{var.name} overrides {leaf.path} from {file_source}",
            path=leaf.path, value=mask_value(leaf.path, value),
            details={"file": mask_value(leaf.path, file_value), "file_source": file_source,
                     "env": mask_value(leaf.path, value)},
            source=var.name,
        ))
    return AppliedOverride(var.name, leaf.path, value, file_value, file_source)


def _unknown_variable(name: str, prefix: str) -> Finding:
    known = [var.name for var in variables_by_name(prefix).values() if var.nested]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]}?" if close else ""
    return Finding(
        Level.WARNING, "env",
        f"{name} names no configuration key{hint}",
        details={"suggestion": close[0]} if close else {}, source=name,
    )
