"""The config lock: one holder at a time across processes, a named holder on timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotconf.errors import FileWriteError, LockTimeout
from hotconf.locking import FileLock, lock_path_for, read_holder

TESTS = Path(__file__).resolve().parent
HELPER_ENV = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
WORKER = str(TESTS / "lock_worker.py")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A live process holding the lock on tmp_path/config.yaml until the test ends."""
    process = subprocess.Popen(
        [sys.executable, WORKER, "hold", str(tmp_path / "config.yaml")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=HELPER_ENV,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line == f"held {process.pid}\n"
    yield process
    process.communicate("", timeout=10)


def test_eight_processes_take_turns(tmp_path: Path) -> None:
    target, log, counter = tmp_path / "config.yaml", tmp_path / "log", tmp_path / "counter"
    counter.write_text("0")
    iterations = 25
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, "count", str(target), str(log), str(counter),
             str(iterations)],
            stdin=subprocess.PIPE, text=True, env=HELPER_ENV,
        )
        for _ in range(8)
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        worker.communicate(timeout=50)
        assert worker.returncode == 0

    lines = log.read_text().splitlines()
    assert len(lines) == 2 * 8 * iterations
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("enter ")
        assert leave == enter.replace("enter", "exit")
    assert int(counter.read_text()) == 8 * iterations
    assert len({line.split()[1] for line in lines}) == 8


def test_timeout_names_file_holder_and_next_step(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(LockTimeout) as caught:
        FileLock(tmp_path / "config.yaml", timeout=0.2).acquire()

    message = str(caught.value)
    assert str(tmp_path / "config.yaml") in message
    assert f"pid {holder.pid} for hold since " in message
    assert "waited 0.2 s" in message
    assert "retry" in message
    assert caught.value.holder_pid == holder.pid
    assert caught.value.exit_code == 4


def test_lock_left_by_a_killed_process_is_taken(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    stale = read_holder(lock_path_for(tmp_path / "config.yaml"))
    assert stale is not None and stale.pid == holder.pid and not stale.alive()

    with FileLock(tmp_path / "config.yaml", timeout=2):
        current = read_holder(lock_path_for(tmp_path / "config.yaml"))
        assert current is not None and current.pid == os.getpid()


def test_lock_file_stays_after_release(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "config.yaml")
    with lock:
        inode = lock.path.stat().st_ino
        assert lock.held

    assert not lock.held
    assert lock.path.stat().st_ino == inode
    assert read_holder(lock.path) is None


def test_release_twice_and_acquire_twice_are_safe(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "config.yaml")
    lock.acquire()
    lock.acquire()
    lock.release()
    lock.release()

    with FileLock(tmp_path / "config.yaml", timeout=0.5):
        pass


def test_second_lock_in_the_same_process_waits_too(tmp_path: Path) -> None:
    with FileLock(tmp_path / "config.yaml", purpose="sync"), pytest.raises(
        LockTimeout, match=f"pid {os.getpid()} for sync"
    ):
        FileLock(tmp_path / "config.yaml", timeout=0.05).acquire()


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError, match="does not exist") as caught:
        FileLock(tmp_path / "nowhere" / "config.yaml").acquire()

    assert str(tmp_path / "nowhere") in str(caught.value)
