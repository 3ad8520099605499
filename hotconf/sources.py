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
import os
import stat
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hotconf.findings import Finding, Level
from hotconf.secrets import is_secret_path

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


def read_source(path: Path, *, required: bool) -> bytes | Finding | None:
    """The bytes of ``path``; ``None`` for an optional file that does not exist; or
    one CRITICAL finding when the file cannot be read."""
    try:
        return _read_bounded(path, required=required)
    except _Unusable as unusable:
        return unusable.finding


def missing_file_finding(path: Path) -> Finding:
    """The CRITICAL finding for a required file that does not exist."""
    return _critical(
        path.name, "structure",
        f"{path} does not exist: create it, or point --config-dir at the directory "
        "that holds it",
    ).finding


def read_document(path: Path, *, required: bool) -> Document | Finding | None:
    """Read and parse ``path`` (YAML, or JSON for ``.json``).

    Returns the document; ``None`` for an optional file that does not exist; or one
    CRITICAL finding when the file cannot be used.
    """
    raw = read_source(path, required=required)
    if raw is None or isinstance(raw, Finding):
        return raw
    return parse_document(path.name, raw)


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
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer, forever.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        if not required:
            return None
        raise _Unusable(missing_file_finding(path)) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None

    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise _critical(path.name, "structure", f"{path} is a directory, not a file")
        raise _critical(path.name, "structure",
                        f"{path} is not a regular file (a FIFO or a device?): "
                        "replace it with the configuration file")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            return handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: OSError) -> _Unusable:
    return _critical(path.name, "structure",
                     f"{path} cannot be read: {exc.strerror}; check its permissions")


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
        builder = _YamlBuilder(name, loader)
        root = builder.build()
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

    if not isinstance(root, dict):
        raise _not_a_mapping(name, root)
    builder.document.tree = root
    return builder.document


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _YamlBuilder:
    """Builds plain values straight from the parser's events.

    Working from events rather than composed nodes keeps a 10,000-key file fast,
    and gives each key's line. An alias shares the anchored value, as PyYAML does;
    its size is counted each time it is used, so an alias bomb is refused before
    anything walks the tree it would expand into.
    """

    def __init__(self, name: str, loader: yaml.SafeLoader) -> None:
        self.name = name
        # PyYAML's parser methods carry no annotations; Any keeps strict mypy quiet.
        self.loader: Any = loader
        self.document = Document(name, {})
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.building: set[str] = set()
        self.expanded = 0

    def build(self) -> Any:
        self.loader.get_event()  # StreamStart
        if self.loader.check_event(yaml.StreamEndEvent):
            return None
        self.loader.get_event()  # DocumentStart
        value, _ = self._value((), 0)
        self.loader.get_event()  # DocumentEnd
        if not self.loader.check_event(yaml.StreamEndEvent):
            event = self.loader.peek_event()
            raise _critical(
                self.name, "syntax",
                f"{self.name} holds more than one YAML document (a second '---' at "
                f"line {event.start_mark.line + 1}); keep one",
                line=event.start_mark.line + 1,
            )
        return value

    def _count(self, size: int, line: int) -> None:
        self.expanded += size
        if self.expanded > MAX_NODES:
            raise _critical(
                self.name, "syntax",
                f"{self.name} expands to more than {MAX_NODES} values (YAML aliases "
                "repeated into a huge tree?): remove the aliases or split the file",
                line=line,
            )

    def _value(self, path: KeyPath, depth: int) -> tuple[Any, int]:
        """The next value and its size in values (aliases counted in full)."""
        event = self.loader.get_event()
        line = event.start_mark.line + 1
        if depth > MAX_DEPTH:
            raise _critical(
                self.name, "syntax",
                f"{self.name} nests deeper than {MAX_DEPTH} levels at line {line}",
                line=line,
            )
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.building:
                raise _critical(self.name, "syntax",
                                f"alias *{event.anchor} at line {line} refers to the mapping "
                                "that contains it: a recursive alias cannot be a "
                                "configuration", line=line)
            try:
                value, size = self.anchors[str(event.anchor)]
            except KeyError:
                raise _critical(self.name, "syntax",
                                f"alias *{event.anchor} at line {line} names no anchor",
                                line=line) from None
            self._count(size, line)
            return value, size

        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.building.add(anchor)

        if isinstance(event, yaml.ScalarEvent):
            value = self._scalar(event, path)
            size = 1
        elif isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            size = 1
            while not self.loader.check_event(yaml.SequenceEndEvent):
                item, item_size = self._value((*path, str(len(items))), depth + 1)
                items.append(item)
                size += item_size
            self.loader.get_event()
            value = items
        elif isinstance(event, yaml.MappingStartEvent):
            value, size = self._mapping(path, depth)
        else:  # pragma: no cover - the parser emits nothing else here
            raise _critical(self.name, "syntax", f"unexpected {event} at line {line}",
                            line=line)

        self._count(1, line)
        if anchor is not None:
            self.building.discard(anchor)
            self.anchors[anchor] = (value, size)
        return value, size

    def _scalar(self, event: Any, path: KeyPath) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR_TAG:
            return event.value
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # Explicit tags such as `!!int five` or `!!python/name` end up here.
            line = event.start_mark.line + 1
            problem = getattr(exc, "problem", None) or str(exc)
            if is_secret_path(".".join(path)):
                # The text and the constructor's complaint would both quote the secret.
                raise _critical(self.name, "syntax",
                                f"the value of {'.'.join(path)} at line {line} cannot be read "
                                f"as {tag}: check its tag", line=line) from None
            raise _critical(self.name, "syntax",
                            f"{event.value!r} at line {line} cannot be read as {tag}: {problem}",
                            line=line) from None

    def _mapping(self, path: KeyPath, depth: int) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        merged: list[Any] = []
        size = 1
        lines = self.document.lines
        while not self.loader.check_event(yaml.MappingEndEvent):
            key_event = self.loader.peek_event()
            line = key_event.start_mark.line + 1
            if isinstance(key_event, yaml.ScalarEvent) and (
                    key_event.tag == _MERGE_TAG or (key_event.value == "<<"
                                                   and key_event.implicit[0])):
                self.loader.get_event()
                value, value_size = self._value(path, depth + 1)
                merged.extend(value if isinstance(value, list) else [value])
                size += value_size
                continue
            if not isinstance(key_event, (yaml.ScalarEvent, yaml.AliasEvent)):
                raise _critical(
                    self.name, "syntax",
                    f"{self.name} uses a mapping or list as a key under "
                    f"{'.'.join(path) or 'the top level'}; keys must be plain names",
                    line=line,
                )
            key_value, _ = self._value(path, depth + 1)
            if isinstance(key_value, (dict, list)):
                raise _critical(self.name, "syntax",
                                f"the key at line {line} is a mapping or list; keys must be "
                                "plain names", line=line)
            key = str(key_value)
            child = (*path, key)
            if key in result:
                self._note_duplicate(child, line)
            lines[child] = line
            value, value_size = self._value(child, depth + 1)
            result[key] = value
            size += value_size
        self.loader.get_event()

        for source in merged:
            if not isinstance(source, dict):
                raise _critical(self.name, "syntax",
                                f"{self.name}: a '<<' merge under "
                                f"{'.'.join(path) or 'the top level'} must name a mapping")
            for key, value in source.items():
                result.setdefault(key, value)
        return result, size

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
    if not text.strip():
        # "Expecting value at line 1, column 1" would hide the plain fact.
        raise _not_a_mapping(name, None)
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
