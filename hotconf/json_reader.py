"""JSON files into documents, with the line of every key.

The standard decoder gives no positions; its pure-Python scanner is wrapped so
that each object also records where each of its values starts.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

from hotconf.document import Document, KeyPath, critical, not_a_mapping
from hotconf.findings import Finding, Level


class _LinedDict(dict[str, Any]):
    """A JSON object as parsed, with the offset of each value and repeated keys."""

    offsets: list[tuple[str, int]]


def parse_json(name: str, text: str) -> Document:
    """Parse JSON text; raises UnusableSource when the file cannot be used."""
    if not text.strip():
        # "Expecting value at line 1, column 1" would hide the plain fact.
        raise not_a_mapping(name, None)
    newlines = [index for index, char in enumerate(text) if char == "\n"]

    def line_of(offset: int) -> int:
        return bisect_right(newlines, offset - 1) + 1

    try:
        value = _decode_json_with_offsets(text)
    except json.JSONDecodeError as exc:
        raise critical(
            name, "syntax",
            f"{name} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno, column=exc.colno,
        ) from None
    except RecursionError:
        raise critical(name, "syntax", f"{name} nests too deeply to be a configuration") from None

    if not isinstance(value, dict):
        raise not_a_mapping(name, value)
    document = Document(name, {})
    document.tree = _JsonWalker(name, document, line_of).value(value, ())
    return document


def _decode_json_with_offsets(text: str) -> Any:
    """json.loads, but each object also records where each of its values starts.

    The standard decoder gives no positions. Its pure-Python scanner calls
    ``parse_object`` with the scanner it should use for values, so wrapping that
    scanner yields the offset of every value, in the order of the object's pairs.
    """
    decoder = json.JSONDecoder(object_pairs_hook=_pairs_to_lined_dict)
    frames: list[list[int]] = []
    scan_once: Callable[[str, int], tuple[Any, int]]

    def tracked_scan(string: str, index: int) -> tuple[Any, int]:
        frames[-1].append(index)
        return scan_once(string, index)

    def parse_object(state: tuple[str, int], strict: bool, _scan: Any, object_hook: Any,
                     object_pairs_hook: Any, memo: Any = None) -> tuple[Any, int]:
        frames.append([])
        try:
            result, end = json.decoder.JSONObject(  # type: ignore[attr-defined]
                state, strict, tracked_scan, object_hook, object_pairs_hook, memo)
        finally:
            offsets = frames.pop()
        result.offsets = list(zip(result.pair_keys, offsets, strict=False))
        return result, end

    def parse_array(state: tuple[str, int], _scan: Any) -> tuple[Any, int]:
        frames.append([])
        try:
            array: tuple[Any, int] = json.decoder.JSONArray(  # type: ignore[attr-defined]
                state, tracked_scan)
            return array
        finally:
            frames.pop()

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.parse_array = parse_array  # type: ignore[attr-defined]
    scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    decoder.scan_once = scan_once  # type: ignore[attr-defined]
    frames.append([])
    return decoder.decode(text)


def _pairs_to_lined_dict(pairs: list[tuple[str, Any]]) -> _LinedDict:
    result = _LinedDict(pairs)
    result.pair_keys = [key for key, _ in pairs]  # type: ignore[attr-defined]
    return result


class _JsonWalker:
    def __init__(self, name: str, document: Document, line_of: Callable[[int], int]) -> None:
        self.name = name
        self.document = document
        self.line_of = line_of

    def value(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, _LinedDict):
            result: dict[str, Any] = {}
            for key, offset in value.offsets:
                child = (*path, key)
                line = self.line_of(offset)
                if child in self.document.lines and key in result:
                    first = self.document.lines[child]
                    dotted = ".".join(child)
                    self.document.duplicates.append(Finding(
                        Level.WARNING, "syntax",
                        f"{dotted} is set twice in {self.name} (lines {first} and {line}); "
                        f"the value at line {line} wins: delete the other",
                        path=dotted, details={"lines": [first, line]},
                        source=f"{self.name}:{line}",
                    ))
                self.document.lines[child] = line
                result[key] = self.value(dict.__getitem__(value, key), child)
            return result
        if isinstance(value, list):
            return [self.value(item, (*path, str(index))) for index, item in enumerate(value)]
        return value
