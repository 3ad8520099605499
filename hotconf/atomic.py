"""Atomic file writes: a reader sees the old bytes or the new ones, never a mix.

A write goes to a unique temp file in the target's own directory (a rename is only
atomic within one filesystem), is flushed to disk, takes the target's mode and owner,
and replaces the target with ``os.replace``; then the directory itself is flushed so
the rename survives a power cut. Any failure removes the temp file, leaves the target
as it was and raises ``FileWriteError`` naming the step that failed.

Temp files are named ``.<name>.hotconf-tmp-<pid>-<random>``. A writer killed halfway
leaves one behind; the next write to the same target sweeps every temp whose writer
is gone, so no temp outlives the next write.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from pathlib import Path

from hotconf.errors import FileWriteError

logger = logging.getLogger(__name__)

TEMP_MARKER = ".hotconf-tmp-"
DEFAULT_NEW_FILE_MODE = 0o644

# A temp whose writer still runs is left alone, unless it is this old: by then the
# pid has surely been reused by an unrelated process, since a write takes milliseconds.
STALE_TEMP_AGE_S = 3600.0

_ADVICE = {
    errno.ENOSPC: "Free space on that filesystem and retry.",
    errno.EDQUOT: "Free space within the quota and retry.",
    errno.EROFS: "The filesystem is mounted read-only; remount it read-write and retry.",
    errno.EACCES: "Run as a user allowed to write there, or fix the directory's permissions.",
    errno.EPERM: "Run as the file's owner or as root.",
    errno.ENOENT: "Create the directory, or check the configured config_dir.",
    errno.EIO: "The disk reported an I/O error; check the device (dmesg) before retrying.",
    errno.EISDIR: "The target is a directory; remove or rename it first.",
}


def temp_path_for(target: Path) -> Path:
    """A fresh temp path beside ``target``, carrying our pid so a sweep can tell it is ours."""
    token = os.urandom(4).hex()
    return target.with_name(f".{target.name}{TEMP_MARKER}{os.getpid()}-{token}")


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    The file keeps its mode and owner; a new file gets ``mode`` or 0644. A symlink is
    followed: its destination is replaced and the link stays a link.

    Raises ``FileWriteError`` (chained to the ``OSError``) naming the step that failed,
    the path and what to do; the target is then untouched and no temp file is left.

    >>> atomic_write(Path("/etc/autobot/config.yaml"), b"backend: {}\\n")  # doctest: +SKIP
    """
    target = _follow_symlink(path)
    directory = target.parent
    sweep_stale_temps(directory, target.name)
    previous = _stat_or_none(target)
    final_mode = mode if mode is not None else _mode_of(previous)
    temp = temp_path_for(target)

    # Create, fill and flush the temp file; the target is not touched yet.
    step = "create a temp file"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _write_error(step, target, exc) from exc
    try:
        step = "write"
        _write_all(fd, data)
        step = "set mode and owner"
        os.fchmod(fd, final_mode)
        if previous is not None:
            _keep_owner(fd, previous)
        step = "fsync"
        os.fsync(fd)
    except OSError as exc:
        _discard(fd, temp)
        raise _write_error(step, target, exc) from exc
    os.close(fd)

    # The rename is the moment the new content becomes visible.
    try:
        os.replace(temp, target)
    except OSError as exc:
        _remove_quietly(temp)
        raise _write_error("rename", target, exc) from exc

    try:
        fsync_directory(directory)
    except OSError as exc:
        raise _durability_error(target, exc) from exc
    logger.debug("atomic write path=%s bytes=%d mode=%o", target, len(data), final_mode)


def atomic_create(path: Path, data: bytes, *, mode: int = DEFAULT_NEW_FILE_MODE) -> None:
    """Create ``path`` with ``data``, appearing whole, and never over an existing file.

    The data is written to a temp file and hard-linked into place, which fails when the
    name exists: the existing file is kept and ``FileExistsError`` is raised. Other
    failures raise ``FileWriteError`` like ``atomic_write``.
    """
    directory = path.parent
    temp = temp_path_for(path)
    step = "create a temp file"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _write_error(step, path, exc, creating=True) from exc
    try:
        step = "write"
        _write_all(fd, data)
        step = "set mode"
        os.fchmod(fd, mode)
        step = "fsync"
        os.fsync(fd)
    except OSError as exc:
        _discard(fd, temp)
        raise _write_error(step, path, exc, creating=True) from exc
    os.close(fd)

    # link() refuses an existing name, which rename() would silently replace.
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        raise _write_error("link into place", path, exc, creating=True) from exc
    finally:
        _remove_quietly(temp)

    try:
        fsync_directory(directory)
    except OSError as exc:
        raise _durability_error(path, exc) from exc


def sweep_stale_temps(directory: Path, name: str | None = None) -> list[Path]:
    """Remove temp files of our naming whose writer is gone; return what was removed.

    With ``name``, only temps for that target are considered. A temp whose writer
    process still runs is kept (it may be mid-write), unless it is older than an hour.
    """
    prefix = f".{name}{TEMP_MARKER}" if name is not None else "."
    removed: list[Path] = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        if not entry.startswith(prefix) or TEMP_MARKER not in entry:
            continue
        candidate = directory / entry
        if _writer_alive(entry) and not _older_than(candidate, STALE_TEMP_AGE_S):
            continue
        if _remove_quietly(candidate):
            removed.append(candidate)
            logger.info("removed stale temp file path=%s", candidate)
    return removed


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries, so a rename or unlink in it is durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _follow_symlink(path: Path) -> Path:
    # Replacing the link itself would turn it into a plain file; write where it points.
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _write_error("read the current file's mode", path, exc) from exc


def _mode_of(previous: os.stat_result | None) -> int:
    if previous is None:
        return DEFAULT_NEW_FILE_MODE
    return stat.S_IMODE(previous.st_mode)


def _keep_owner(fd: int, previous: os.stat_result) -> None:
    current = os.fstat(fd)
    if (current.st_uid, current.st_gid) != (previous.st_uid, previous.st_gid):
        os.fchown(fd, previous.st_uid, previous.st_gid)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _discard(fd: int, temp: Path) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    _remove_quietly(temp)


def _remove_quietly(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        logger.warning("could not remove temp file path=%s error=%s", path, exc.strerror)
        return False
    return True


def _writer_alive(entry: str) -> bool:
    pid_text = entry.rsplit(TEMP_MARKER, 1)[1].split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        # Our own temp: another thread of this process may be writing it right now.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except OSError:
        return False


def _advice(exc: OSError) -> str:
    return _ADVICE.get(exc.errno or 0, "Check the path and the disk, then retry.")


def _write_error(
    step: str, target: Path, exc: OSError, *, creating: bool = False
) -> FileWriteError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOENT and not target.parent.is_dir():
        reason = f"directory {target.parent} does not exist"
    outcome = "nothing was created" if creating else "the file is unchanged"
    msg = f"{target}: write failed at step '{step}': {reason}; {outcome}. {_advice(exc)}"
    return FileWriteError(msg)


def _durability_error(target: Path, exc: OSError) -> FileWriteError:
    msg = (
        f"{target}: the new content is in place, but step 'fsync of the directory' failed:"
        f" {exc.strerror or exc}; the change may not survive a power loss. {_advice(exc)}"
    )
    return FileWriteError(msg)
