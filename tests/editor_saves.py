"""Saving a file the way editors and tools do, step by step, for the watcher tests.

Each function does what the real thing does to the file system, in the same order,
because the order is what a watcher sees: an atomic rename lands as one moved-to, vim
moves the old file aside before writing a new one, ``cp`` truncates in place.
Where a real tool is available on every machine (cp, sed, touch) the tests run it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def atomic_replace(path: Path, data: bytes) -> None:
    """Write a unique temp next to ``path``, fsync it, rename it over ``path``."""
    temp = path.with_name(f"{path.name}.hotconf-tmp-{secrets.token_hex(4)}")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def write_in_place(path: Path, data: bytes) -> None:
    """Open, truncate, write, close: what ``cp`` and most simple programs do."""
    with open(path, "wb") as handle:
        handle.write(data)


def overwrite_same_size(path: Path, data: bytes) -> None:
    """Rewrite the bytes of an existing file in place without truncating it."""
    with open(path, "r+b") as handle:
        handle.write(data)


def vim_probe(directory: Path) -> None:
    """vim's check that it may create files here: create ``4913``, remove it."""
    probe = directory / "4913"
    probe.write_bytes(b"")
    probe.unlink()


def vim_move_aside(path: Path) -> Path:
    """vim's first step with ``backupcopy=auto``: rename the file to ``file~``."""
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    return backup


def vim_save(path: Path, data: bytes) -> None:
    """vim's default save of a file with one link: probe, move aside, write, drop backup."""
    vim_probe(path.parent)
    backup = vim_move_aside(path)
    write_in_place(path, data)
    backup.unlink()
