"""Backup generations: whole or absent, never overwritten, the newest N kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotconf.backups import BACKUPS_DIR, BackupStore
from hotconf.errors import BackupError
from hotconf.version import content_version

TESTS = Path(__file__).resolve().parent
HELPER_ENV = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
UNSHARE = ["unshare", "--mount", "--map-root-user", "--propagation", "private"]

BASE = b"# the base\nbackend:\n  server_port: 8001\n"
SETTINGS = b'{"backend": {"server_port": 8002}}\n'


class SteppingClock:
    """A clock that advances one second per reading, so generations sort predictably."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_bytes(BASE)
    (tmp_path / "settings.json").write_bytes(SETTINGS)
    return tmp_path


def test_generation_holds_the_current_files(config_dir: Path) -> None:
    store = BackupStore(config_dir)

    generation = store.take(reason="sync")

    version = content_version({"config.yaml": BASE, "settings.json": SETTINGS})
    assert generation.version == version
    assert generation.id.endswith(f".{version}")
    assert generation.names == ("config.yaml", "settings.json")
    assert [backup.size for backup in generation.files] == [len(BASE), len(SETTINGS)]
    names = sorted(os.listdir(config_dir / BACKUPS_DIR))
    assert names == sorted([f"config.yaml.{generation.id}", f"settings.json.{generation.id}",
                            f"manifest.{generation.id}.json"])
    assert store.read(generation.id) == {"config.yaml": BASE, "settings.json": SETTINGS}
    assert store.generations() == [generation]


def test_manifest_records_an_absent_settings_file(config_dir: Path) -> None:
    (config_dir / "settings.json").unlink()
    store = BackupStore(config_dir)

    generation = store.take()

    manifest = json.loads((store.directory / f"manifest.{generation.id}.json").read_text())
    assert manifest["absent"] == ["settings.json"]
    assert store.read(generation) == {"config.yaml": BASE}


def test_same_files_twice_make_one_generation(config_dir: Path) -> None:
    store = BackupStore(config_dir, clock=SteppingClock())

    first = store.take()
    second = store.take()

    assert second == first
    assert len(store.generations()) == 1


def test_generations_are_listed_newest_first(config_dir: Path) -> None:
    store = BackupStore(config_dir, clock=SteppingClock())
    taken = []
    for number in range(3):
        (config_dir / "config.yaml").write_bytes(BASE + f"# edit {number}\n".encode())
        taken.append(store.take())

    assert [generation.id for generation in store.generations()] == [
        generation.id for generation in reversed(taken)
    ]
    assert store.newest() == taken[-1]


def test_an_existing_backup_is_never_overwritten(config_dir: Path) -> None:
    frozen = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
    store = BackupStore(config_dir, clock=lambda: frozen)
    version = content_version({"config.yaml": BASE, "settings.json": SETTINGS})
    squatter = store.directory / f"config.yaml.20250301T100000.000000Z.{version}"
    store.directory.mkdir(parents=True)
    squatter.write_bytes(b"someone else's bytes\n")

    generation = store.take()

    assert squatter.read_bytes() == b"someone else's bytes\n"
    assert generation.id == f"20250301T100000.000001Z.{version}"
    assert store.read(generation)["config.yaml"] == BASE


def test_prune_keeps_the_newest_n(config_dir: Path) -> None:
    store = BackupStore(config_dir, keep=3, clock=SteppingClock())
    taken = []
    for number in range(5):
        (config_dir / "config.yaml").write_bytes(BASE + f"# edit {number}\n".encode())
        taken.append(store.take())

    removed = store.prune()

    assert removed == [taken[1].id, taken[0].id]
    assert [generation.id for generation in store.generations()] == [
        generation.id for generation in reversed(taken[2:])
    ]
    leftover = [entry for entry in os.listdir(store.directory)
                if taken[0].id in entry or taken[1].id in entry]
    assert leftover == []


def test_generation_without_manifest_is_ignored_then_cleaned(config_dir: Path) -> None:
    clock = SteppingClock()
    store = BackupStore(config_dir, clock=clock)
    complete = store.take()
    store.directory.joinpath(f"config.yaml.20250301T090000.000000Z.{'a' * 12}").write_bytes(
        b"half"
    )
    recent_id = f"{(clock.now + timedelta(seconds=5)).strftime('%Y%m%dT%H%M%S.%fZ')}.{'b' * 12}"
    store.directory.joinpath(f"config.yaml.{recent_id}").write_bytes(b"being written")

    assert store.generations() == [complete]
    store.prune()

    remaining = sorted(os.listdir(store.directory))
    assert f"config.yaml.20250301T090000.000000Z.{'a' * 12}" not in remaining
    # A young one may belong to a writer still at work: left for a later prune.
    assert f"config.yaml.{recent_id}" in remaining
    assert store.generations() == [complete]


def test_damaged_backup_is_refused_by_name(config_dir: Path) -> None:
    store = BackupStore(config_dir)
    generation = store.take()
    (store.directory / f"config.yaml.{generation.id}").write_bytes(b"tampered\n")

    with pytest.raises(BackupError, match="does not match its manifest") as caught:
        store.read(generation.id)

    assert f"config.yaml.{generation.id}" in str(caught.value)


def test_get_accepts_id_prefix_and_version(config_dir: Path) -> None:
    store = BackupStore(config_dir, clock=SteppingClock())
    first = store.take()
    (config_dir / "config.yaml").write_bytes(BASE + b"# later\n")
    second = store.take()

    assert store.get(first.id) == first
    assert store.get(second.version) == second
    assert store.get(first.id[:17]) == first
    with pytest.raises(BackupError, match="several generations"):
        store.get("2025")
    with pytest.raises(BackupError, match="hotconf history"):
        store.get("19990101")


def test_keep_below_one_is_refused(config_dir: Path) -> None:
    with pytest.raises(BackupError, match="keep must be at least 1, got 0"):
        BackupStore(config_dir, keep=0)


def test_no_backups_yet_lists_nothing(config_dir: Path) -> None:
    store = BackupStore(config_dir)

    assert store.generations() == []
    assert store.newest() is None
    assert store.prune() == []


def test_disk_full_leaves_no_partial_generation(tmp_path: Path) -> None:
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")
    completed = subprocess.run(
        [*UNSHARE, sys.executable, str(TESTS / "fault_writer.py"), "enospc-backup",
         str(tmp_path)],
        capture_output=True, text=True, env=HELPER_ENV, timeout=50, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    outcome = json.loads(completed.stdout)

    assert outcome["type"] == "FileWriteError"
    assert outcome["cause"] == "ENOSPC"
    assert "cannot write the backup" in outcome["error"]
    assert outcome["generations"] == 0
    assert outcome["backup_files"] == []
    assert outcome["target_unchanged"] is True
