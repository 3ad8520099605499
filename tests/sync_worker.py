"""One of several processes changing one config dir at once, for test_sync_concurrency.

``python tests/sync_worker.py ROLE DIR LOG ROUNDS SEED`` waits for a line on stdin (so
all workers start together), then ROUNDS times does its ROLE:

- ``sync``: ``sync_to_base``;
- ``rollback``: ``rollback`` to the generation before the current one;
- ``edit``: under the config lock, a GUI-like edit of settings.json, or a note
  appended to config.yaml.

Each operation that changed the files appends one JSON line to LOG: the role, the
content version before and after, and when it finished (read under the lock), so
the test can put the operations in lock order and check they form one chain.
"""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from controller.rollback import rollback
from controller.sync import sync_to_base
from hotconf.atomic import atomic_write
from hotconf.errors import BackupError
from hotconf.locking import FileLock
from hotconf.version import content_version, read_managed_files

KEEP = 10_000
LOCK_TIMEOUT = 30.0


def record(log: Path, role: str, before: str, after: str, finished: datetime) -> None:
    line = json.dumps({"pid": os.getpid(), "role": role, "before": before, "after": after,
                       "at": finished.isoformat()})
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def edit(config_dir: Path, chooser: random.Random, round_number: int) -> tuple[str, str, datetime]:
    with FileLock(config_dir / "config.yaml", timeout=LOCK_TIMEOUT, purpose="edit"):
        before = content_version(read_managed_files(config_dir))
        if chooser.random() < 0.7:
            settings = {"ui": {"font_size": chooser.randint(8, 48)},
                        "chat": {"max_messages": chooser.randint(10, 10_000)}}
            atomic_write(config_dir / "settings.json", json.dumps(settings).encode())
        else:
            base = (config_dir / "config.yaml").read_bytes()
            note = f"# edit by {os.getpid()} round {round_number}\n".encode()
            atomic_write(config_dir / "config.yaml", base + note)
        after = content_version(read_managed_files(config_dir))
        return before, after, datetime.now(UTC)


def main(role: str, config_dir: Path, log: Path, rounds: int, seed: int) -> None:
    chooser = random.Random(seed)
    sys.stdin.readline()
    for round_number in range(rounds):
        if role == "sync":
            synced = sync_to_base(config_dir, keep=KEEP, lock_timeout=LOCK_TIMEOUT)
            if synced.status == "synced" and synced.finished_at is not None:
                record(log, role, synced.version_before, synced.version_after,
                       synced.finished_at)
        elif role == "rollback":
            try:
                restored = rollback(config_dir, keep=KEEP, lock_timeout=LOCK_TIMEOUT)
            except BackupError:
                continue
            if restored.status == "rolled_back" and restored.finished_at is not None:
                record(log, role, restored.version_before, restored.version_after,
                       restored.finished_at)
        elif role == "edit":
            record(log, role, *edit(config_dir, chooser, round_number))
        else:
            sys.exit(f"sync_worker: unknown role {role!r}; use sync, rollback or edit")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
