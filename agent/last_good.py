"""The last good configuration: the files of the last version the agent accepted.

Kept in ``<config_dir>/.hotconf/last-good/`` so a restarted agent facing a broken
config.yaml still has something valid to serve. The files go first and a ``VERSION``
file last; on reading, the version is recomputed and must match, so a set torn by a
crash halfway through a save is not mistaken for a good one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path

from hotconf.atomic import atomic_write
from hotconf.version import MANAGED_FILES, content_version

logger = logging.getLogger(__name__)

LAST_GOOD_DIR = Path(".hotconf") / "last-good"
VERSION_FILE = "VERSION"


def last_good_dir(config_dir: Path) -> Path:
    return config_dir / LAST_GOOD_DIR


def save_last_good(config_dir: Path, files: Mapping[str, bytes]) -> None:
    """Store ``files`` (managed name -> bytes) as the last good set.

    The files may hold secrets, so they are written mode 0600 in a 0700 directory.
    Raises ``FileWriteError`` when the disk refuses.
    """
    directory = last_good_dir(config_dir)
    directory.parent.mkdir(exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (directory / VERSION_FILE).unlink()
    for name in MANAGED_FILES:
        if name in files:
            atomic_write(directory / name, files[name], mode=0o600)
        else:
            with contextlib.suppress(FileNotFoundError):
                (directory / name).unlink()
    atomic_write(directory / VERSION_FILE, content_version(files).encode() + b"\n", mode=0o600)


def read_last_good(config_dir: Path) -> dict[str, bytes] | None:
    """The last good files, or None when there are none or they do not add up."""
    directory = last_good_dir(config_dir)
    try:
        recorded = (directory / VERSION_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("last-good unreadable: path=%s error=%s", directory, exc)
        return None

    files: dict[str, bytes] = {}
    for name in MANAGED_FILES:
        try:
            files[name] = (directory / name).read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("last-good unreadable: path=%s error=%s", directory / name, exc)
            return None
    if content_version(files) != recorded:
        logger.warning(
            "last-good is incomplete, ignoring it: path=%s recorded=%s found=%s",
            directory, recorded, content_version(files),
        )
        return None
    return files
