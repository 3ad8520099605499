"""Reading one configuration file into a tree that remembers its lines.

``read_document`` never raises on bad input: a file that cannot be used becomes a
single CRITICAL finding that says what is wrong and where (file, line, column), and
the document is left out of the layering. Limits protect the reader: files over
1 MiB, YAML aliases that expand a small file into a huge tree, and nesting deeper
than any configuration needs are refused quickly.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hotconf.document import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    Document,
    KeyPath,
    UnusableSource,
    critical,
)
from hotconf.findings import Finding
from hotconf.json_reader import parse_json
from hotconf.yaml_reader import parse_yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Document",
    "KeyPath",
    "missing_file_finding",
    "parse_document",
    "read_document",
    "read_source",
]


def read_source(path: Path, *, required: bool) -> bytes | Finding | None:
    """The bytes of ``path``; ``None`` for an optional file that does not exist; or
    one CRITICAL finding when the file cannot be read."""
    try:
        return _read_bounded(path, required=required)
    except UnusableSource as unusable:
        return unusable.finding


def missing_file_finding(path: Path) -> Finding:
    """The CRITICAL finding for a required file that does not exist."""
    return critical(
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
            raise critical(
                name, "structure",
                f"{name} is {len(raw)} bytes, over the limit of {MAX_FILE_BYTES} bytes: "
                "a configuration file this large is a mistake; check what wrote it",
            )
        text = _decode(name, raw)
        return parse_json(name, text) if name.endswith(".json") else parse_yaml(name, text)
    except UnusableSource as unusable:
        return unusable.finding


def _read_bounded(path: Path, *, required: bool) -> bytes | None:
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer, forever.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        if not required:
            return None
        raise UnusableSource(missing_file_finding(path)) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None

    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise critical(path.name, "structure", f"{path} is a directory, not a file")
        raise critical(path.name, "structure",
                        f"{path} is not a regular file (a FIFO or a device?): "
                        "replace it with the configuration file")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            return handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: OSError) -> UnusableSource:
    return critical(path.name, "structure",
                     f"{path} cannot be read: {exc.strerror}; check its permissions")


def _decode(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise critical(
            name, "syntax",
            f"{name} is not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}, "
            f"column {column}): save it as UTF-8",
            line=line, column=column,
        ) from None
