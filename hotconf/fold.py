"""Folding settings.json into config.yaml, keeping the base file's comments and order.

Sync-to-base makes the user's overrides the new base. The text of config.yaml is
edited, not regenerated. When settings.json only changes values of keys the base
already has, those lines are rewritten in place (the value's span comes from libyaml's
marks; an end-of-line comment keeps its column). Anything else goes through
``hotconf.yaml_edit``, which keeps comments, blank lines and key order with ruamel.yaml
and puts added keys under their parent. Mappings merge key by key; lists and scalars
are replaced whole, exactly as the layering does, and the result is checked against
that: read back the way the service reads it, the new file must equal config.yaml
layered with settings.json, or it is not written.

Only the two files are folded; the environment never is, so a secret set in a
variable cannot reach the file. Sections the schema marks ``NEVER_IN_BASE`` are left
out of the base and handed back, so the caller can keep them in settings.json.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from hotconf.errors import ConfigRejected
from hotconf.findings import Finding
from hotconf.schema import NEVER_IN_BASE
from hotconf.secrets import mask_value
from hotconf.sources import parse_document
from hotconf.version import BASE_FILE
from hotconf.yaml_edit import (
    base_rejected,
    fold_round_trip,
    resolves_to_non_string,
    same_value,
    yaml_float,
)

_NOT_PLAIN = (": ", " #", "\n", "\t")
_NOT_PLAIN_START = "-?:,[]{}#&*!|>'\"%@`"

try:
    _FastLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml is missing on this machine
    _FastLoader = yaml.SafeLoader


@dataclass(frozen=True, slots=True)
class Change:
    """One value settings.json changes in the base: its path, before and after."""

    path: str
    before: Any
    after: Any
    added: bool

    def to_dict(self) -> dict[str, Any]:
        """The change with secret values masked."""
        return {
            "path": self.path,
            "before": None if self.added else mask_value(self.path, self.before),
            "after": mask_value(self.path, self.after),
            "added": self.added,
        }


@dataclass(slots=True)
class Fold:
    """The new config.yaml, what changed, and what was left out of it."""

    text: bytes
    tree: dict[str, Any]
    changes: list[Change] = field(default_factory=list)
    left_out: dict[str, Any] = field(default_factory=dict)


def fold_settings(
    base: bytes, settings: Mapping[str, Any], *, leave_out: Iterable[str] = NEVER_IN_BASE
) -> Fold:
    """Fold the ``settings`` tree into the text of config.yaml.

    ``base`` is config.yaml's bytes; ``settings`` is settings.json's parsed tree.
    Returns the new bytes (equal to ``base`` when nothing changes), the changes, and
    the top-level sections of ``leave_out`` that settings.json holds.

    Raises ``ConfigRejected`` when config.yaml cannot be edited safely: it does not
    parse, repeats a key, or (with anchors and aliases) would not read back as the
    layered result.
    """
    excluded = set(leave_out)
    left_out = {key: copy.deepcopy(value) for key, value in settings.items() if key in excluded}
    overlay = {key: value for key, value in settings.items() if key not in excluded}
    base_tree = _plain_tree(base)
    changes = _changes(base_tree, overlay, ())
    expected = _layered(base_tree, overlay)
    if not changes:
        return Fold(base, expected, [], left_out)

    # Most syncs only change values of keys the base has: edit those lines directly.
    # Anything else, or anything the check below rejects, goes through ruamel.yaml.
    text = _replace_scalars_in_place(base, changes)
    if text is None or not same_value(_plain_tree(text), expected):
        text = fold_round_trip(base, overlay)

    # The service reads the file with another parser: make sure it reads what we meant.
    if not same_value(_plain_tree(text), expected):
        raise base_rejected(
            "config.yaml would not read back as config.yaml layered with settings.json"
            " (anchors, aliases or merge keys share the values being changed); fold"
            " those values by hand, then sync again",
        )
    return Fold(text, expected, changes, left_out)


def _replace_scalars_in_place(base: bytes, changes: list[Change]) -> bytes | None:
    """Rewrite one-line scalar values in the text; None when a change is not that simple."""
    if any(change.added or isinstance(change.before, (dict, list))
           or isinstance(change.after, (dict, list)) for change in changes):
        return None
    text = base.decode("utf-8")
    try:
        root = yaml.compose(text, Loader=_FastLoader)
    except yaml.YAMLError:
        return None
    lines = text.splitlines(keepends=True)
    for change in changes:
        node = _value_node(root, change.path.split("."))
        if node is None or node.start_mark.line != node.end_mark.line:
            return None
        line_number = node.start_mark.line
        line = lines[line_number]
        start, end = node.start_mark.column, node.end_mark.column
        rendered = _render_scalar(change.after)
        rest = line[end:]
        # Keep an end-of-line comment in its column when there is room for it.
        stripped = rest.lstrip(" ")
        if stripped.startswith("#"):
            padding = max(1, len(rest) - len(stripped) - (len(rendered) - (end - start)))
            rest = " " * padding + stripped
        lines[line_number] = line[:start] + rendered + rest
    return "".join(lines).encode("utf-8")


def _value_node(root: Any, path: list[str]) -> Any:
    node = root
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        found = None
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                found = value
        if found is None:
            return None
        node = found
    if not isinstance(node, yaml.ScalarNode) or node.style not in (None, "", "'", '"'):
        return None
    return node


def _render_scalar(value: Any) -> str:
    if isinstance(value, float):
        return yaml_float(value)
    if isinstance(value, str) and value and not resolves_to_non_string(value):
        plain = value.strip() == value and not any(mark in value for mark in _NOT_PLAIN)
        if plain and value[0] not in _NOT_PLAIN_START:
            return value
    return json.dumps(value, ensure_ascii=False)


def _plain_tree(text: bytes) -> dict[str, Any]:
    parsed = parse_document(BASE_FILE, text) if text.strip() else None
    if parsed is None:
        return {}
    if isinstance(parsed, Finding):
        raise ConfigRejected(f"{parsed.location()}: {parsed.message}", [parsed])
    return parsed.tree


def _changes(base: Any, overlay: Mapping[str, Any], prefix: tuple[str, ...]) -> list[Change]:
    found: list[Change] = []
    for key, value in overlay.items():
        path = (*prefix, key)
        present = isinstance(base, dict) and key in base
        current = base.get(key) if isinstance(base, dict) else None
        if isinstance(value, dict) and isinstance(current, dict):
            found.extend(_changes(current, value, path))
        elif not present or not same_value(current, value):
            found.append(Change(".".join(path), current, copy.deepcopy(value), not present))
    return found


def _layered(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = _layered(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


