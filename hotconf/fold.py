"""Folding settings.json into config.yaml, keeping the base file's comments and order.

Sync-to-base makes the user's overrides the new base. The text of config.yaml is
edited, not regenerated: ruamel.yaml loads it with its comments, blank lines and key
order, the values settings.json overrides are replaced in place, and keys that
settings.json adds are inserted under their parent, in the schema's order among their
siblings. Mappings merge key by key; lists and scalars are replaced whole, exactly as
the layering does, and the result is checked against that: parsed again the way the
service reads it, the new file must equal config.yaml layered with settings.json.

Only the two files are folded; the environment never is, so a secret set in a
variable cannot reach the file. Sections the schema marks ``NEVER_IN_BASE`` are left
out of the base and handed back, so the caller can keep them in settings.json.
"""

from __future__ import annotations

import copy
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from hotconf.errors import ConfigRejected
from hotconf.findings import Finding, Level
from hotconf.schema import NEVER_IN_BASE, children_of
from hotconf.secrets import mask_value
from hotconf.sources import parse_document
from hotconf.version import BASE_FILE

_STR_TAG = "tag:yaml.org,2002:str"
_NOT_PLAIN = (": ", " #", "\n", "\t")
_NOT_PLAIN_START = "-?:,[]{}#&*!|>'\"%@`"

try:
    _FastLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml is missing on this machine
    _FastLoader = yaml.SafeLoader
_RESOLVER = yaml.resolver.Resolver()


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
    if text is None or not _same(_plain_tree(text), expected):
        text = _fold_round_trip(base, overlay)

    # The service reads the file with another parser: make sure it reads what we meant.
    if not _same(_plain_tree(text), expected):
        raise _rejected(
            "config.yaml would not read back as config.yaml layered with settings.json"
            " (anchors, aliases or merge keys share the values being changed); fold"
            " those values by hand, then sync again",
        )
    return Fold(text, expected, changes, left_out)


def _fold_round_trip(base: bytes, overlay: Mapping[str, Any]) -> bytes:
    round_trip = _round_trip_yaml(base)
    document = _load_round_trip(round_trip, base)
    _fold_mapping(document, overlay, ())
    stream = io.StringIO()
    round_trip.dump(document, stream)
    return stream.getvalue().encode("utf-8")


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
        return _yaml_float(value)
    if isinstance(value, str) and value and not _resolves_to_non_string(value):
        plain = value.strip() == value and not any(mark in value for mark in _NOT_PLAIN)
        if plain and value[0] not in _NOT_PLAIN_START:
            return value
    return json.dumps(value, ensure_ascii=False)


def _yaml_float(value: float) -> str:
    """A float as YAML 1.1 reads it back: ``1e-05`` would be a string there."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    if "." not in mantissa:
        mantissa += ".0"
    if exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}"


def _represent_float(representer: Any, value: float) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:float", _yaml_float(value))


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
        elif not present or not _same(current, value):
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


def _same(left: Any, right: Any) -> bool:
    """Equal and of the same types throughout: ``1``, ``1.0`` and ``true`` differ."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    return bool(left == right)


def _round_trip_yaml(base: bytes) -> YAML:
    round_trip = YAML(typ="rt")
    round_trip.preserve_quotes = True
    round_trip.width = 4096
    mapping, sequence, offset = _guess_indentation(base.decode("utf-8", "replace"))
    round_trip.indent(mapping=mapping, sequence=sequence, offset=offset)
    round_trip.representer.add_representer(float, _represent_float)
    return round_trip


def _guess_indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, dash offset) as the file uses them, so untouched lines stay."""
    mapping: int | None = None
    offset: int | None = None
    opener: int | None = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if opener is not None:
            if stripped.startswith("- ") and indent >= opener and offset is None:
                offset = indent - opener
            elif not stripped.startswith("- ") and indent > opener and mapping is None:
                mapping = indent - opener
        opener = indent if stripped.endswith(":") and not stripped.startswith("- ") else None
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    offset = mapping if offset is None else offset
    return mapping, offset + 2, offset


def _load_round_trip(round_trip: YAML, base: bytes) -> CommentedMap:
    try:
        document = round_trip.load(base) if base.strip() else CommentedMap()
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise _rejected(f"{exc.problem or exc}; fix config.yaml, then sync again", line) from exc
    except YAMLError as exc:
        raise _rejected(f"{exc}; fix config.yaml, then sync again") from exc
    if document is None:
        return CommentedMap()
    if not isinstance(document, CommentedMap):
        raise _rejected("config.yaml is not a mapping of sections; it cannot be a base")
    return document


def _fold_mapping(node: CommentedMap, overlay: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
    for key, value in overlay.items():
        path = (*prefix, key)
        current = node.get(key)
        if isinstance(value, dict) and isinstance(current, CommentedMap):
            _fold_mapping(current, value, path)
        elif key in node:
            if not _same(_plain(current), value):
                _replace(node, key, value)
        else:
            _insert(node, key, value, prefix)


def _replace(node: CommentedMap, key: str, value: Any) -> None:
    current = node[key]
    if not isinstance(current, (CommentedMap, CommentedSeq)) and not isinstance(
        value, (dict, list)
    ):
        # A scalar for a scalar: the key keeps its end-of-line comment where it is.
        node[key] = _to_round_trip(value)
        return
    trailing = _detach_trailing(node, key)
    node[key] = _to_round_trip(value)
    _attach_trailing(node, key, trailing)


def _insert(node: CommentedMap, key: str, value: Any, prefix: tuple[str, ...]) -> None:
    position = _position_for(node, key, prefix)
    keys = list(node)
    trailing = _detach_trailing(node, keys[position - 1]) if position > 0 else None
    if trailing is None and position == len(keys) and not prefix and keys:
        # A new section at the end of the file: set it apart as the others are.
        _ensure_blank_line_after(node, keys[-1])
    node.insert(position, key, _to_round_trip(value))
    _attach_trailing(node, key, trailing)


def _position_for(node: CommentedMap, key: str, prefix: tuple[str, ...]) -> int:
    """After the last present sibling the schema lists before ``key``; else at the end."""
    order = children_of(".".join(prefix))
    if key not in order:
        return len(node)
    earlier = set(order[: order.index(key)])
    position = 0
    for index, present in enumerate(node):
        if present in earlier:
            position = index + 1
    if position == 0 and not any(present in order for present in node):
        return len(node)
    return position


def _tail(node: Any, key: Any) -> tuple[Any, Any, int] | None:
    """The container, key and comment slot holding what follows the last line of node[key]."""
    value = node[key]
    if isinstance(value, CommentedMap) and len(value):
        return _tail(value, list(value)[-1])
    if isinstance(value, CommentedSeq) and len(value):
        return _tail(value, len(value) - 1)
    if isinstance(node, CommentedSeq):
        return node, key, 0
    if isinstance(node, CommentedMap):
        return node, key, 2
    return None


def _detach_trailing(node: Any, key: Any) -> Any:
    """Take the blank lines and comment lines after node[key]'s last line, if any.

    ruamel keeps them on the deepest last value before them; an item inserted after
    that value must carry them, or they would end up above it.
    """
    where = _tail(node, key)
    if where is None:
        return None
    container, slot_key, slot = where
    entry = container.ca.items.get(slot_key)
    if not entry or len(entry) <= slot or entry[slot] is None:
        return None
    token = entry[slot]
    head, newline, rest = token.value.partition("\n")
    if not newline or not rest:
        return None
    moved = copy.copy(token)
    moved.value = "\n" + rest
    token.value = head + newline
    return moved


def _attach_trailing(node: Any, key: Any, trailing: Any) -> None:
    if trailing is None:
        return
    where = _tail(node, key)
    if where is None:
        return
    container, slot_key, slot = where
    entry = container.ca.items.setdefault(slot_key, [None, None, None, None])
    while len(entry) <= slot:
        entry.append(None)
    entry[slot] = trailing


def _ensure_blank_line_after(node: CommentedMap, key: Any) -> None:
    where = _tail(node, key)
    if where is None:
        return
    container, slot_key, slot = where
    entry = container.ca.items.setdefault(slot_key, [None, None, None, None])
    while len(entry) <= slot:
        entry.append(None)
    if entry[slot] is None:
        entry[slot] = CommentToken("\n\n", CommentMark(0), None)
    elif not entry[slot].value.endswith("\n\n"):
        entry[slot].value += "\n"


def _to_round_trip(value: Any) -> Any:
    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = _to_round_trip(item)
        return mapping
    if isinstance(value, list):
        return CommentedSeq(_to_round_trip(item) for item in value)
    if isinstance(value, str) and _resolves_to_non_string(value):
        # "yes", "on", "0777" are plain strings to ruamel (YAML 1.2) but not to the
        # service's reader (YAML 1.1): quote them so they stay strings.
        return DoubleQuotedScalarString(value)
    return value


def _resolves_to_non_string(text: str) -> bool:
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag != _STR_TAG)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    for plain_type in (bool, int, float, str):
        if isinstance(value, plain_type):
            return plain_type(value)
    return value


def _rejected(message: str, line: int | None = None) -> ConfigRejected:
    source = f"{BASE_FILE}:{line}" if line is not None else BASE_FILE
    finding = Finding(Level.CRITICAL, "syntax", message, source=source)
    return ConfigRejected(f"{source}: {message}", [finding])
