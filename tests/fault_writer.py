"""Write under a failing disk and report what happened, for tests/test_atomic.py.

``python tests/fault_writer.py SCENARIO DIR`` prints one JSON object: the error raised
(message and the errno of its cause), whether the target kept its old bytes, and the
files left in the directory.

The scenarios that need a filesystem of their own (``enospc``, ``enospc-backup``,
``readonly``) mount a tiny tmpfs on DIR and must run in a private mount namespace
(``unshare --mount --map-root-user``), so the mount vanishes with the process:

- ``enospc``: a 16 KiB tmpfs; replacing a small file with 64 KiB fails for real.
- ``enospc-backup``: the same disk; taking a backup generation of a 10 KiB file fails.
- ``readonly``: a tmpfs remounted read-only after the file was written (EROFS).
- ``sync-readonly``: DIR's managed files copied onto a tmpfs on DIR, remounted
  read-only, then a sync.

Two scenarios inject a device error by wrapping one os function in this process only,
because no unprivileged, portable way gives a real EIO:

- ``eio-write``: ``os.write`` fails with EIO.
- ``eio-fsync``: the first ``os.fsync`` (the temp file's) fails with EIO.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotconf.atomic import atomic_write
from hotconf.backups import BackupStore
from hotconf.errors import HotconfError
from hotconf.locking import FileLock

OLD = b"backend:\n  server_port: 8001\n"


def mount_tmpfs(directory: Path, size: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                   check=True)


def attempt(action: Callable[[], object]) -> dict[str, Any]:
    try:
        action()
    except HotconfError as exc:
        cause = exc.__cause__
        code = cause.errno if isinstance(cause, OSError) else None
        return {"error": str(exc), "type": type(exc).__name__,
                "cause": errno.errorcode.get(code or 0)}
    return {"error": None, "type": None, "cause": None}


def failing(name: str, code: int, *, times: int | None = None) -> Callable[..., Any]:
    original = getattr(os, name)
    calls = {"failed": 0}

    def wrapper(*args: Any) -> Any:
        if times is None or calls["failed"] < times:
            calls["failed"] += 1
            raise OSError(code, os.strerror(code))
        return original(*args)

    return wrapper


def sync_read_only(directory: Path) -> dict[str, Any]:
    from controller.sync import sync_to_base
    from hotconf.version import read_managed_files

    files = read_managed_files(directory)
    mount_tmpfs(directory, "1m")
    for name, data in files.items():
        (directory / name).write_bytes(data)
    subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
    report = attempt(lambda: sync_to_base(directory))
    report["files_unchanged"] = read_managed_files(directory) == files
    report["entries"] = sorted(os.listdir(directory))
    return report


def run(scenario: str, directory: Path) -> dict[str, Any]:
    target = directory / "config.yaml"
    report: dict[str, Any] = {"scenario": scenario}
    if scenario == "sync-readonly":
        return {**report, **sync_read_only(directory)}

    if scenario in ("enospc", "enospc-backup", "readonly"):
        mount_tmpfs(directory, "16k")
    if scenario == "enospc-backup":
        target.write_bytes(b"# big\n" + b"k: v\n" * 2048)
    else:
        atomic_write(target, OLD)
    before = target.read_bytes()

    if scenario == "enospc":
        report.update(attempt(lambda: atomic_write(target, b"x: y\n" * 13000)))
    elif scenario == "enospc-backup":
        store = BackupStore(directory)
        report.update(attempt(store.take))
        report["generations"] = len(store.generations())
        report["backup_files"] = sorted(os.listdir(store.directory))
    elif scenario == "readonly":
        subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
        report.update(attempt(lambda: atomic_write(target, b"new: 1\n")))
        lock_outcome = attempt(lambda: FileLock(target, timeout=1).acquire())
        report["lock_error"] = lock_outcome["error"]
    elif scenario == "eio-write":
        os.write = failing("write", errno.EIO)  # type: ignore[assignment]
        report.update(attempt(lambda: atomic_write(target, b"new: 1\n")))
    elif scenario == "eio-fsync":
        os.fsync = failing("fsync", errno.EIO, times=1)  # type: ignore[assignment]
        report.update(attempt(lambda: atomic_write(target, b"new: 1\n")))
    else:
        sys.exit(f"fault_writer: unknown scenario {scenario!r}")

    report["target_unchanged"] = target.read_bytes() == before
    report["leftovers"] = sorted(
        entry for entry in os.listdir(directory) if entry not in ("config.yaml", ".hotconf")
    )
    return report


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], Path(sys.argv[2]))))
