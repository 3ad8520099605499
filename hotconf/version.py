"""The content version of a configuration directory.

Both sides of the fleet compute it with this one function, so "the VM has version
X" means the same bytes the controller pushed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

BASE_FILE = "config.yaml"
SETTINGS_FILE = "settings.json"
MANAGED_FILES: tuple[str, ...] = (BASE_FILE, SETTINGS_FILE)

VERSION_LENGTH = 12


def content_version(files: Mapping[str, bytes]) -> str:
    """Return the first 12 hex digits of a SHA-256 over the managed files.

    ``files`` maps a file name to its bytes; only files that exist are given. The
    files are hashed sorted by name, each as its name, a zero byte and its bytes.

    >>> content_version({"config.yaml": b"backend: {}\\n"})
    'a0b8f0b8a2c9'
    """
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8"))
        digest.update(b"\0")
        digest.update(files[name])
    return digest.hexdigest()[:VERSION_LENGTH]


def read_managed_files(config_dir: Path) -> dict[str, bytes]:
    """Read the managed files that exist in ``config_dir``; absent ones are left out."""
    contents: dict[str, bytes] = {}
    for name in MANAGED_FILES:
        try:
            contents[name] = (config_dir / name).read_bytes()
        except FileNotFoundError:
            continue
    return contents


def directory_version(config_dir: Path) -> str:
    """Return the content version of the managed files in ``config_dir``."""
    return content_version(read_managed_files(config_dir))
