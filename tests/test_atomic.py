"""Atomic writes: old or new bytes, never a mix; nothing left behind; failures named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hotconf.atomic import TEMP_MARKER, atomic_create, atomic_write, sweep_stale_temps
from hotconf.errors import FileWriteError

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
HELPER_ENV = {**os.environ, "PYTHONPATH": str(REPO)}
UNSHARE = ["unshare", "--mount", "--map-root-user", "--propagation", "private"]


def temps_in(directory: Path) -> list[str]:
    return [entry for entry in os.listdir(directory) if TEMP_MARKER in entry]


def run_helper(args: list[str], *, prefix: list[str] | None = None) -> dict[str, Any]:
    command = [*(prefix or []), sys.executable, *args]
    completed = subprocess.run(
        command, capture_output=True, text=True, env=HELPER_ENV, timeout=50, check=False
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@pytest.fixture(scope="module")
def private_mounts() -> None:
    """Skip unless this host lets us mount a tmpfs in a private mount namespace."""
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


class TestAtomicWrite:
    def test_new_file_gets_0644_whatever_the_umask(self, tmp_path: Path) -> None:
        previous = os.umask(0o077)
        try:
            atomic_write(tmp_path / "config.yaml", b"a: 1\n")
        finally:
            os.umask(previous)

        assert (tmp_path / "config.yaml").read_bytes() == b"a: 1\n"
        assert (tmp_path / "config.yaml").stat().st_mode & 0o777 == 0o644

    def test_mode_argument_sets_a_new_files_mode(self, tmp_path: Path) -> None:
        atomic_write(tmp_path / "secret.yaml", b"token: x\n", mode=0o600)

        assert (tmp_path / "secret.yaml").stat().st_mode & 0o777 == 0o600

    def test_existing_mode_and_owner_are_kept(self, tmp_path: Path) -> None:
        target = tmp_path / "config.yaml"
        target.write_bytes(b"old\n")
        target.chmod(0o640)
        owner = (1234, 2345) if os.geteuid() == 0 else (os.getuid(), os.getgid())
        os.chown(target, *owner)

        atomic_write(target, b"new\n")

        status = target.stat()
        assert target.read_bytes() == b"new\n"
        assert status.st_mode & 0o777 == 0o640
        assert (status.st_uid, status.st_gid) == owner

    def test_symlink_is_followed_and_stays_a_link(self, tmp_path: Path) -> None:
        real_dir = tmp_path / "real"
        real_dir.mkdir()
        (real_dir / "config.yaml").write_bytes(b"old\n")
        link = tmp_path / "config.yaml"
        link.symlink_to(real_dir / "config.yaml")

        atomic_write(link, b"new\n")

        assert link.is_symlink()
        assert (real_dir / "config.yaml").read_bytes() == b"new\n"
        assert temps_in(tmp_path) == [] and temps_in(real_dir) == []

    def test_success_leaves_no_temp(self, tmp_path: Path) -> None:
        for round_number in range(3):
            atomic_write(tmp_path / "config.yaml", f"n: {round_number}\n".encode())

        assert sorted(os.listdir(tmp_path)) == ["config.yaml"]

    def test_missing_directory_is_named(self, tmp_path: Path) -> None:
        missing = tmp_path / "nowhere"

        with pytest.raises(FileWriteError) as caught:
            atomic_write(missing / "config.yaml", b"a: 1\n")

        message = str(caught.value)
        assert f"directory {missing} does not exist" in message
        assert "create a temp file" in message
        assert isinstance(caught.value.__cause__, FileNotFoundError)
        assert not missing.exists()

    def test_rename_failure_names_the_step_and_removes_the_temp(self, tmp_path: Path) -> None:
        # A directory in the target's place makes the final rename fail for real.
        (tmp_path / "config.yaml").mkdir()
        (tmp_path / "config.yaml" / "inside").write_text("kept")

        with pytest.raises(FileWriteError, match="step 'rename'") as caught:
            atomic_write(tmp_path / "config.yaml", b"a: 1\n")

        assert isinstance(caught.value.__cause__, OSError)
        assert (tmp_path / "config.yaml" / "inside").read_text() == "kept"
        assert temps_in(tmp_path) == []


class TestStaleTemps:
    def test_temp_of_a_dead_writer_goes_at_the_next_write(
        self, tmp_path: Path, dead_pid: int
    ) -> None:
        stale = tmp_path / f".config.yaml{TEMP_MARKER}{dead_pid}-0badc0de"
        stale.write_bytes(b"half a fi")

        atomic_write(tmp_path / "config.yaml", b"a: 1\n")

        assert not stale.exists()
        assert sorted(os.listdir(tmp_path)) == ["config.yaml"]

    def test_temp_of_a_live_writer_is_kept(self, tmp_path: Path) -> None:
        writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                  stdin=subprocess.PIPE)
        try:
            live = tmp_path / f".config.yaml{TEMP_MARKER}{writer.pid}-0badc0de"
            live.write_bytes(b"being written")

            removed = sweep_stale_temps(tmp_path, "config.yaml")

            assert removed == []
            assert live.exists()
        finally:
            writer.communicate(b"", timeout=10)

    def test_sweep_touches_only_our_naming_for_that_target(
        self, tmp_path: Path, dead_pid: int
    ) -> None:
        other_target = tmp_path / f".settings.json{TEMP_MARKER}{dead_pid}-00000000"
        foreign = tmp_path / ".config.yaml.swp"
        other_target.write_bytes(b"x")
        foreign.write_bytes(b"x")

        atomic_write(tmp_path / "config.yaml", b"a: 1\n")

        assert other_target.exists() and foreign.exists()
        assert sweep_stale_temps(tmp_path) == [other_target]

    def test_writers_killed_at_random_moments_leave_old_or_new(self, tmp_path: Path) -> None:
        record = run_helper([str(TESTS / "crash_writer.py"), str(tmp_path), "200", "3"])

        assert record["rounds"] == 200
        assert record["bad_content"] == []
        assert record["unparsable"] == 0
        assert record["temps_after_next_write"] == []
        # The kills must really have landed mid-write, or the test proves nothing.
        assert record["kills_with_temp_left"] > 0
        assert record["saw_old"] > 0 and record["saw_new"] > 0


class TestFailingDisk:
    def test_disk_full_at_write(self, tmp_path: Path, private_mounts: None) -> None:
        outcome = run_helper([str(TESTS / "fault_writer.py"), "enospc", str(tmp_path)],
                             prefix=UNSHARE)

        assert outcome["type"] == "FileWriteError"
        assert outcome["cause"] == "ENOSPC"
        assert "step 'write'" in outcome["error"]
        assert "No space left on device" in outcome["error"]
        assert "config.yaml" in outcome["error"]
        assert outcome["target_unchanged"] is True
        assert outcome["leftovers"] == []

    def test_device_error_at_write(self, tmp_path: Path) -> None:
        outcome = run_helper([str(TESTS / "fault_writer.py"), "eio-write", str(tmp_path)])

        assert outcome["cause"] == "EIO"
        assert "step 'write'" in outcome["error"]
        assert outcome["target_unchanged"] is True
        assert outcome["leftovers"] == []

    def test_device_error_at_fsync(self, tmp_path: Path) -> None:
        outcome = run_helper([str(TESTS / "fault_writer.py"), "eio-fsync", str(tmp_path)])

        assert outcome["cause"] == "EIO"
        assert "step 'fsync'" in outcome["error"]
        assert "Input/output error" in outcome["error"]
        assert outcome["target_unchanged"] is True
        assert outcome["leftovers"] == []

    def test_read_only_directory(self, tmp_path: Path, private_mounts: None) -> None:
        outcome = run_helper([str(TESTS / "fault_writer.py"), "readonly", str(tmp_path)],
                             prefix=UNSHARE)

        assert outcome["cause"] == "EROFS"
        assert "Read-only file system" in outcome["error"]
        assert "remount it read-write" in outcome["error"]
        assert outcome["target_unchanged"] is True
        assert outcome["leftovers"] == []
        assert "cannot open the lock file" in outcome["lock_error"]


class TestAtomicCreate:
    def test_creates_a_new_file_whole(self, tmp_path: Path) -> None:
        atomic_create(tmp_path / "manifest.json", b"{}\n", mode=0o600)

        assert (tmp_path / "manifest.json").read_bytes() == b"{}\n"
        assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == 0o600

    def test_never_overwrites(self, tmp_path: Path) -> None:
        (tmp_path / "manifest.json").write_bytes(b"first\n")

        with pytest.raises(FileExistsError):
            atomic_create(tmp_path / "manifest.json", b"second\n")

        assert (tmp_path / "manifest.json").read_bytes() == b"first\n"
        assert temps_in(tmp_path) == []
