"""Editing config.yaml's text with ruamel.yaml, keeping its comments and layout.

``fold_round_trip`` loads the base with its comments, blank lines and key order,
overlays a tree (mappings merged key by key, lists and scalars replaced whole) and
dumps it with the file's own indentation. Keys the overlay adds go under their parent,
after the siblings the schema lists before them. ruamel.yaml keeps the blank lines and
comments that follow a value on the deepest last value before them, so an inserted or
replaced item takes them over; otherwise they would land above it.

The service reads the file with PyYAML (YAML 1.1), ruamel.yaml writes YAML 1.2: the
scalar helpers here quote strings such as ``yes`` and write floats such as ``1e-05``
so that both read the same value.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Mapping
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from hotconf.errors import ConfigRejected
from hotconf.findings import Finding, Level
from hotconf.schema import children_of
from hotconf.version import BASE_FILE

_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()


def fold_round_trip(base: bytes, overlay: Mapping[str, Any]) -> bytes:
    """config.yaml's text with ``overlay`` folded in; raises ``ConfigRejected`` if unusable."""
    round_trip = _round_trip_yaml(base)
    document = _load_round_trip(round_trip, base)
    _fold_mapping(document, overlay, ())
    stream = io.StringIO()
    round_trip.dump(document, stream)
    return stream.getvalue().encode("utf-8")


def yaml_float(value: float) -> str:
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
    return representer.represent_scalar("tag:yaml.org,2002:float", yaml_float(value))


def same_value(left: Any, right: Any) -> bool:
    """Equal and of the same types throughout: ``1``, ``1.0`` and ``true`` differ."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_value(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same_value, left, right))
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
        message = f"{exc.problem or exc}; fix config.yaml, then sync again"
        raise base_rejected(message, line) from exc
    except YAMLError as exc:
        raise base_rejected(f"{exc}; fix config.yaml, then sync again") from exc
    if document is None:
        return CommentedMap()
    if not isinstance(document, CommentedMap):
        raise base_rejected("config.yaml is not a mapping of sections; it cannot be a base")
    return document


def _fold_mapping(node: CommentedMap, overlay: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
    for key, value in overlay.items():
        path = (*prefix, key)
        current = node.get(key)
        if isinstance(value, dict) and isinstance(current, CommentedMap):
            _fold_mapping(current, value, path)
        elif key in node:
            if not same_value(_plain(current), value):
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
    # A new section is set apart from the one before it as the others are: at the end
    # of the file, or where a blank line followed that section (the new one carries the
    # rest, so a comment about the next section stays just above it).
    set_apart = (trailing is None and position == len(keys)) or (
        trailing is not None and trailing.value.startswith("\n\n")
    )
    if set_apart and not prefix and keys:
        _ensure_blank_line_after(node, keys[position - 1])
    node.insert(position, key, _to_round_trip(value))
    _attach_trailing(node, key, trailing)
    if position == 0 and not prefix and keys:
        # A new first section: the old first one keeps its distance from it.
        _ensure_blank_line_after(node, key)


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
    if isinstance(value, str) and resolves_to_non_string(value):
        # "yes", "on", "0777" are plain strings to ruamel (YAML 1.2) but not to the
        # service's reader (YAML 1.1): quote them so they stay strings.
        return DoubleQuotedScalarString(value)
    return value


def resolves_to_non_string(text: str) -> bool:
    """True when YAML 1.1 would read ``text``, written plain, as something else than a string."""
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


def base_rejected(message: str, line: int | None = None) -> ConfigRejected:
    """The rejection of config.yaml as a base to fold into, as one CRITICAL finding."""
    source = f"{BASE_FILE}:{line}" if line is not None else BASE_FILE
    finding = Finding(Level.CRITICAL, "syntax", message, source=source)
    return ConfigRejected(f"{source}: {message}", [finding])
