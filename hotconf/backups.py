"""Backup generations: the managed files as they were at one moment, kept to return to.

A generation lives in ``<config_dir>/.hotconf/backups/`` as one file per managed file,
``<file>.<UTC time>.<version>``, and a manifest, ``manifest.<UTC time>.<version>.json``,
that lists each file's size and SHA-256 and the managed files that were absent. The
data files are written first and the manifest last, atomically: a generation without
its manifest is incomplete (its writer died), is ignored by every reader and is
removed by the next prune. Nothing in the backups is ever overwritten: every file is
created with exclusive semantics under a name that carries the time to the microsecond.

The id of a generation is ``<UTC time>.<version>``, e.g.
``20250301T101500.123456Z.3fa2c19b0d7e``; the version is ``content_version`` of the
generation's files, so a generation's id says which configuration it holds.

Callers that take and prune generations while other processes may do the same hold the
config file's lock (``hotconf.locking.FileLock``) around both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hotconf.atomic import atomic_create, sweep_stale_temps
from hotconf.errors import BackupError, FileWriteError
from hotconf.version import MANAGED_FILES, content_version, read_managed_files

logger = logging.getLogger(__name__)

BACKUPS_DIR = Path(".hotconf") / "backups"
DEFAULT_KEEP = 20
MANIFEST_NAME = "manifest"
MANIFEST_FORMAT = 1

# A manifest-less generation younger than this may still be being written by another
# process that does not hold the lock; only older ones are cleaned.
ORPHAN_GRACE = timedelta(seconds=60)

STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
BACKUP_NAME = re.compile(
    r"^(?P<name>[^/]+?)\.(?P<stamp>\d{8}T\d{6}\.\d{6}Z)\.(?P<version>[0-9a-f]{12})"
    r"(?P<suffix>\.json)?$"
)


@dataclass(frozen=True, slots=True)
class BackupFile:
    """One file of a generation, with the mode and owner it had (None when unknown)."""

    name: str
    size: int
    sha256: str
    path: Path
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """The managed files as they were at one moment."""

    id: str
    taken_at: datetime
    version: str
    files: tuple[BackupFile, ...]
    reason: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(backup.name for backup in self.files)

    @property
    def size(self) -> int:
        return sum(backup.size for backup in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``hotconf history --json`` and the API share."""
        return {
            "id": self.id,
            "time": self.taken_at.isoformat(),
            "version": self.version,
            "reason": self.reason,
            "size": self.size,
            "files": [{"name": backup.name, "size": backup.size} for backup in self.files],
        }


class BackupStore:
    """The backup generations of one configuration directory.

    ``keep`` is how many generations ``prune`` leaves (the newest ones); ``clock`` gives
    the time a generation is stamped with.
    """

    def __init__(
        self,
        config_dir: Path,
        *,
        keep: int = DEFAULT_KEEP,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if keep < 1:
            msg = f"backups: keep must be at least 1, got {keep}; keep one generation or more"
            raise BackupError(msg)
        self.config_dir = config_dir
        self.directory = config_dir / BACKUPS_DIR
        self.keep = keep
        self._clock = clock

    def take(
        self, files: Mapping[str, bytes] | None = None, *, reason: str = ""
    ) -> Generation:
        """Store ``files`` (default: the managed files now on disk) as a new generation.

        When the newest generation already holds exactly these files, it is returned
        and nothing is written. Raises ``FileWriteError`` when the backup cannot be
        written; whatever was written for the failed generation is removed.
        """
        contents = dict(read_managed_files(self.config_dir) if files is None else files)
        for name in contents:
            _check_file_name(name)
        version = content_version(contents)
        newest = self.newest()
        if newest is not None and newest.version == version:
            return newest

        self._ensure_directory()
        stamp = self._clock()
        while True:
            generation_id = f"{stamp.strftime(STAMP_FORMAT)}.{version}"
            try:
                generation = self._write_generation(generation_id, stamp, contents, reason)
            except FileExistsError:
                # Same microsecond and same content as another writer: take the next one.
                stamp += timedelta(microseconds=1)
                continue
            logger.info(
                "backup generation taken id=%s files=%s reason=%s",
                generation_id, ",".join(sorted(contents)), reason,
            )
            return generation

    def generations(self) -> list[Generation]:
        """The complete generations, newest first."""
        found: list[Generation] = []
        for entry in self._entries():
            match = BACKUP_NAME.match(entry)
            if match is None or match["name"] != MANIFEST_NAME or not match["suffix"]:
                continue
            generation = self._load_manifest(self.directory / entry)
            if generation is not None:
                found.append(generation)
        found.sort(key=lambda generation: (generation.taken_at, generation.id), reverse=True)
        return found

    def newest(self) -> Generation | None:
        """The newest complete generation, or None when there is none."""
        generations = self.generations()
        return generations[0] if generations else None

    def get(self, wanted: str) -> Generation:
        """The generation named by its id, a unique prefix of it, or its version.

        Raises ``BackupError`` when none or several match.
        """
        generations = self.generations()
        exact = [generation for generation in generations if generation.id == wanted]
        if exact:
            return exact[0]
        by_version = [generation for generation in generations if generation.version == wanted]
        if by_version:
            return by_version[0]
        by_prefix = [generation for generation in generations if generation.id.startswith(wanted)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        if not by_prefix:
            msg = (
                f"{self.directory}: no backup generation {wanted!r};"
                " run `hotconf history` to list them"
            )
        else:
            ids = ", ".join(generation.id for generation in by_prefix[:5])
            msg = (
                f"{self.directory}: {wanted!r} matches several generations ({ids});"
                " give more of the id"
            )
        raise BackupError(msg)

    def read(self, generation: Generation | str) -> dict[str, bytes]:
        """The files of a generation, checked against its manifest.

        Raises ``BackupError`` when a file is missing or its bytes do not match.
        """
        if isinstance(generation, str):
            generation = self.get(generation)
        contents: dict[str, bytes] = {}
        for backup in generation.files:
            try:
                data = backup.path.read_bytes()
            except OSError as exc:
                msg = (
                    f"{backup.path}: cannot read backup of {backup.name} in generation"
                    f" {generation.id}: {exc.strerror or exc}; choose another generation"
                )
                raise BackupError(msg) from exc
            if len(data) != backup.size or hashlib.sha256(data).hexdigest() != backup.sha256:
                msg = (
                    f"{backup.path}: backup of {backup.name} in generation {generation.id}"
                    " does not match its manifest (damaged); choose another generation"
                )
                raise BackupError(msg)
            contents[backup.name] = data
        return contents

    def prune(self) -> list[str]:
        """Remove generations beyond the newest ``keep``, and incomplete leftovers.

        Returns the ids of the generations removed.
        """
        generations = self.generations()
        removed: list[str] = []
        for generation in generations[self.keep :]:
            # The manifest goes first, so a half-removed generation reads as incomplete.
            self._unlink(self._manifest_path(generation.id))
            for backup in generation.files:
                self._unlink(backup.path)
            removed.append(generation.id)
        complete = {generation.id for generation in generations}
        self._remove_orphans(complete)
        sweep_stale_temps(self.directory)
        if removed:
            logger.info("backup generations pruned count=%d keep=%d", len(removed), self.keep)
        return removed

    def _write_generation(
        self, generation_id: str, stamp: datetime, contents: Mapping[str, bytes], reason: str
    ) -> Generation:
        created: list[Path] = []
        files: list[BackupFile] = []
        try:
            for name in sorted(contents):
                path = self.directory / f"{name}.{generation_id}"
                _create_exclusive(path, contents[name])
                created.append(path)
                # The service's user may own settings.json (the GUI writes it); a file
                # restored from here must come back with the owner it had.
                mode, uid, gid = _attributes(self.config_dir / name)
                files.append(BackupFile(
                    name, len(contents[name]), hashlib.sha256(contents[name]).hexdigest(), path,
                    mode, uid, gid,
                ))
            generation = Generation(generation_id, stamp, generation_id[-12:], tuple(files), reason)
            manifest = manifest_bytes(generation)
            atomic_create(self._manifest_path(generation_id), manifest, mode=0o600)
        except BaseException:
            for path in created:
                self._unlink(path)
            raise
        return generation

    def _load_manifest(self, path: Path) -> Generation | None:
        try:
            record = json.loads(path.read_bytes())
            generation_id = str(record["id"])
            files = tuple(
                BackupFile(
                    name=str(entry["name"]),
                    size=int(entry["size"]),
                    sha256=str(entry["sha256"]),
                    path=self.directory / f"{entry['name']}.{generation_id}",
                    mode=_optional_int(entry.get("mode")),
                    uid=_optional_int(entry.get("uid")),
                    gid=_optional_int(entry.get("gid")),
                )
                for entry in record["files"]
            )
            return Generation(
                id=generation_id,
                taken_at=datetime.fromisoformat(record["time"]),
                version=str(record["version"]),
                files=files,
                reason=str(record.get("reason", "")),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("unreadable backup manifest ignored path=%s error=%s", path, exc)
            return None

    def _remove_orphans(self, complete: set[str]) -> None:
        cutoff = self._clock() - ORPHAN_GRACE
        for entry in self._entries():
            match = BACKUP_NAME.match(entry)
            if match is None:
                continue
            generation_id = f"{match['stamp']}.{match['version']}"
            if generation_id in complete:
                continue
            stamp = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
            if stamp < cutoff:
                self._unlink(self.directory / entry)
                logger.info("incomplete backup removed path=%s", self.directory / entry)

    def _manifest_path(self, generation_id: str) -> Path:
        return self.directory / f"{MANIFEST_NAME}.{generation_id}.json"

    def _entries(self) -> list[str]:
        try:
            return os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            msg = f"{self.directory}: cannot list backups: {exc.strerror or exc}"
            raise BackupError(msg) from exc

    def _ensure_directory(self) -> None:
        try:
            self.directory.parent.mkdir(mode=0o755, exist_ok=True)
            self.directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            msg = (
                f"{self.directory}: cannot create the backups directory:"
                f" {exc.strerror or exc}. Nothing was replaced; make {self.config_dir}"
                " writable and retry"
            )
            raise FileWriteError(msg) from exc

    @staticmethod
    def _unlink(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _create_exclusive(path: Path, data: bytes) -> None:
    # A data file needs no atomic appearance: until the manifest lands, nothing reads it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise
    except OSError as exc:
        raise _backup_write_error(path, "create", exc) from exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise _backup_write_error(path, "write", exc) from exc
    os.close(fd)


def _backup_write_error(path: Path, step: str, exc: OSError) -> FileWriteError:
    msg = (
        f"{path}: cannot write the backup, step '{step}' failed: {exc.strerror or exc};"
        " nothing was replaced. Free space or fix permissions under .hotconf/backups and retry"
    )
    return FileWriteError(msg)


def manifest_bytes(generation: Generation) -> bytes:
    record = {
        "format": MANIFEST_FORMAT,
        "id": generation.id,
        "time": generation.taken_at.isoformat(),
        "version": generation.version,
        "reason": generation.reason,
        "files": [
            {"name": backup.name, "size": backup.size, "sha256": backup.sha256,
             **{key: value for key, value in
                (("mode", backup.mode), ("uid", backup.uid), ("gid", backup.gid))
                if value is not None}}
            for backup in generation.files
        ],
        "absent": [name for name in MANAGED_FILES if name not in generation.names],
    }
    return (json.dumps(record, indent=2) + "\n").encode("utf-8")


def _attributes(path: Path) -> tuple[int | None, int | None, int | None]:
    """The permission bits, uid and gid of ``path``; Nones when it cannot be read."""
    try:
        info = path.stat()
    except OSError:
        return None, None, None
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _check_file_name(name: str) -> None:
    if not name or "/" in name or name.startswith(".") or name == MANIFEST_NAME:
        msg = f"backups: {name!r} is not a file name that can be backed up"
        raise BackupError(msg)
