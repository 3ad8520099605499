"""A process that uses hotconf.locking.FileLock, driven by tests/test_locking.py.

``python tests/lock_worker.py count TARGET LOG COUNTER ITERATIONS``
    Wait for a line on stdin (so every worker starts at once), then ITERATIONS times:
    take the lock, append ``enter <pid>`` to LOG, increment the number in COUNTER by a
    plain read and write (lost updates show when two workers overlap), append
    ``exit <pid>``, release.

``python tests/lock_worker.py hold TARGET``
    Take the lock, print ``held <pid>``, and hold it until stdin closes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hotconf.locking import FileLock


def append_line(log: Path, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def count(target: Path, log: Path, counter: Path, iterations: int) -> None:
    sys.stdin.readline()
    pid = os.getpid()
    for _ in range(iterations):
        with FileLock(target, timeout=30, purpose="count"):
            append_line(log, f"enter {pid}")
            value = int(counter.read_text() or "0")
            # Give another process every chance to interleave if the lock failed.
            os.sched_yield()
            counter.write_text(str(value + 1))
            append_line(log, f"exit {pid}")


def hold(target: Path) -> None:
    with FileLock(target, timeout=30, purpose="hold"):
        print(f"held {os.getpid()}", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "count":
        count(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
    elif mode == "hold":
        hold(Path(sys.argv[2]))
    else:
        sys.exit(f"lock_worker: unknown mode {mode!r}; use count or hold")
