"""Reading one configuration file into a tree that remembers its lines.

``read_document`` never raises on bad input: a file that cannot be used becomes a
single CRITICAL finding that says what is wrong and where (file, line, column), and
the document is left out of the layering. Limits protect the reader: files over
1 MiB, YAML aliases that expand a small file into a huge tree, and nesting deeper
than any configuration needs are refused quickly.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hotconf.findings import Finding, Level

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

KeyPath = tuple[str, ...]

try:
    _YamlLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml is missing on this machine
    _YamlLoader = yaml.SafeLoader


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


class _Unusable(Exception):
    """The file cannot be layered; carries the one finding that says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def read_document(path: Path, *, required: bool) -> Document | Finding | None:
    """Read and parse ``path`` (YAML, or JSON for ``.json``).

    Returns the document; ``None`` for an optional file that does not exist; or one
    CRITICAL finding when the file cannot be used.
    """
    try:
        raw = _read_bounded(path, required=required)
        if raw is None:
            return None
        return parse_document(path.name, raw)
    except _Unusable as unusable:
        return unusable.finding


def parse_document(name: str, raw: bytes) -> Document | Finding:
    """Parse the bytes of a file called ``name``; a CRITICAL finding when unusable."""
    try:
        if len(raw) > MAX_FILE_BYTES:
            raise _critical(
                name, "structure",
                f"{name} is {len(raw)} bytes, over the limit of {MAX_FILE_BYTES} bytes: "
                "a configuration file this large is a mistake; check what wrote it",
            )
        text = _decode(name, raw)
        return _parse_json(name, text) if name.endswith(".json") else _parse_yaml(name, text)
    except _Unusable as unusable:
        return unusable.finding


def _critical(name: str, category: Any, message: str, *, line: int | None = None,
              column: int | None = None) -> _Unusable:
    details: dict[str, Any] = {}
    if line is not None:
        details["line"] = line
    if column is not None:
        details["column"] = column
    source = f"{name}:{line}" if line is not None else name
    return _Unusable(Finding(Level.CRITICAL, category, message, details=details, source=source))


def _read_bounded(path: Path, *, required: bool) -> bytes | None:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        if not required:
            return None
        raise _critical(
            path.name, "structure",
            f"{path} does not exist: create it, or point --config-dir at the directory "
            "that holds it",
        ) from None
    except IsADirectoryError:
        raise _critical(path.name, "structure", f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise _critical(
            path.name, "structure",
            f"{path} cannot be read: {exc.strerror}; check its permissions",
        ) from None
    return raw


def _decode(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _critical(
            name, "syntax",
            f"{name} is not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}, "
            f"column {column}): save it as UTF-8",
            line=line, column=column,
        ) from None


def _not_a_mapping(name: str, found: Any) -> _Unusable:
    kind = "empty" if found is None else f"a {type(found).__name__}"
    return _critical(
        name, "structure",
        f"the top level of {name} is {kind}; it must be a mapping of sections "
        "(backend:, memory:, ...)",
        line=1,
    )


# --- YAML -------------------------------------------------------------------------


def _parse_yaml(name: str, text: str) -> Document:
    loader = _YamlLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "cannot be parsed"
        raise _critical(
            name, "syntax",
            f"{name} is not valid YAML at line {line}, column {column}: {problem}",
            line=line, column=column,
        ) from None
    except yaml.YAMLError as exc:
        raise _critical(name, "syntax", f"{name} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()

    document = Document(name, {})
    if not isinstance(root, yaml.MappingNode):
        found = None if root is None else _YamlWalker(name, loader, document).value(root, ())
        raise _not_a_mapping(name, found)
    document.tree = _YamlWalker(name, loader, document).value(root, ())
    return document


class _YamlWalker:
    """Builds plain values from composed nodes, noting lines, duplicates and size."""

    def __init__(self, name: str, loader: yaml.SafeLoader, document: Document) -> None:
        self.name = name
        self.loader = loader
        self.document = document
        self.nodes = 0

    def value(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _critical(
                self.name, "syntax",
                f"{self.name} expands to more than {MAX_NODES} values (YAML aliases "
                "repeated into a huge tree?): remove the aliases or split the file",
                line=node.start_mark.line + 1,
            )
        if len(path) > MAX_DEPTH:
            raise _critical(
                self.name, "syntax",
                f"{self.name} nests deeper than {MAX_DEPTH} levels at "
                f"{'.'.join(path[:5])}...: a recursive alias?",
                line=node.start_mark.line + 1,
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*path, str(index))) for index, item in
                    enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            line = node.start_mark.line + 1
            raise _critical(
                self.name, "syntax", f"{self.name}:{line}: {exc}", line=line,
            ) from None

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            line = node.start_mark.line + 1
            raise _critical(self.name, "syntax", f"{self.name}:{line}: {exc}", line=line) from None

        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node, path)
            if isinstance(key, (dict, list)):
                raise _critical(
                    self.name, "syntax",
                    f"{self.name} uses a mapping or list as a key under "
                    f"{'.'.join(path) or 'the top level'}; keys must be plain names",
                    line=key_node.start_mark.line + 1,
                )
            key = str(key)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in result:
                self._note_duplicate(child, line)
            self.document.lines[child] = line
            result[key] = self.value(value_node, child)
        return result

    def _note_duplicate(self, path: KeyPath, line: int) -> None:
        first = self.document.lines.get(path)
        dotted = ".".join(path)
        self.document.duplicates.append(Finding(
            Level.WARNING, "syntax",
            f"{dotted} is set twice in {self.name} (lines {first} and {line}); "
            f"the value at line {line} wins: delete the other",
            path=dotted, details={"lines": [first, line]}, source=f"{self.name}:{line}",
        ))


# --- JSON -------------------------------------------------------------------------


class _LinedDict(dict[str, Any]):
    """A JSON object as parsed, with the offset of each value and repeated keys."""

    offsets: list[tuple[str, int]]


def _parse_json(name: str, text: str) -> Document:
    newlines = [index for index, char in enumerate(text) if char == "\n"]

    def line_of(offset: int) -> int:
        return bisect_right(newlines, offset - 1) + 1

    try:
        value = _decode_json_with_offsets(text)
    except json.JSONDecodeError as exc:
        raise _critical(
            name, "syntax",
            f"{name} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno, column=exc.colno,
        ) from None
    except RecursionError:
        raise _critical(name, "syntax", f"{name} nests too deeply to be a configuration") from None

    if not isinstance(value, dict):
        raise _not_a_mapping(name, value)
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
