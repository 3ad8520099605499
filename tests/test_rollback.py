"""Rollback: back to a generation, after backing up today's files; twice is a round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from controller.rollback import plan_rollback, rollback
from controller.sync import sync_to_base
from hotconf.backups import BackupStore
from hotconf.errors import BackupError
from hotconf.version import read_managed_files

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "autobot"
    shutil.copytree(EXAMPLE, directory)
    return directory


def test_default_is_the_state_before_the_last_replacement(config_dir: Path) -> None:
    started = read_managed_files(config_dir)
    sync_to_base(config_dir)

    result = rollback(config_dir)

    assert result.status == "rolled_back"
    assert read_managed_files(config_dir) == started
    assert result.backup is not None
    assert result.backup.reason == "rollback"


def test_two_rollbacks_return_to_where_you_started(config_dir: Path) -> None:
    sync_to_base(config_dir)
    synced = read_managed_files(config_dir)

    rollback(config_dir)
    rollback(config_dir)

    assert read_managed_files(config_dir) == synced


def test_a_generation_without_settings_removes_todays(config_dir: Path) -> None:
    (config_dir / "settings.json").unlink()
    without = BackupStore(config_dir).take(reason="test")
    (config_dir / "settings.json").write_text('{"ui": {"theme": "light"}}\n')

    plan = plan_rollback(config_dir, without.id)
    result = rollback(config_dir, without.id)

    assert plan.file_actions == {"config.yaml": "unchanged", "settings.json": "removed"}
    assert result.status == "rolled_back"
    assert not (config_dir / "settings.json").exists()
    assert result.backup is not None
    assert BackupStore(config_dir).read(result.backup)["settings.json"] == (
        b'{"ui": {"theme": "light"}}\n')


def test_a_generation_with_critical_findings_is_refused(config_dir: Path) -> None:
    broken = BackupStore(config_dir).take(
        {"config.yaml": b"backend: {}\n"}, reason="test")
    before = read_managed_files(config_dir)

    result = rollback(config_dir, broken.id)

    assert result.status == "refused" and result.exit_code == 3
    assert "CRITICAL" in result.message
    assert any("required section" in finding.message for finding in result.report)
    assert read_managed_files(config_dir) == before
    assert [generation.id for generation in BackupStore(config_dir).generations()] == [broken.id]


def test_unknown_generation_is_named(config_dir: Path) -> None:
    with pytest.raises(BackupError, match="no backup generation '20990101'"):
        rollback(config_dir, "20990101")


def test_nothing_to_roll_back_to(config_dir: Path) -> None:
    with pytest.raises(BackupError, match="no earlier backup generation"):
        plan_rollback(config_dir)


def test_rolling_back_to_the_current_files_does_nothing(config_dir: Path) -> None:
    current = BackupStore(config_dir).take(reason="test")

    result = rollback(config_dir, current.version)

    assert result.status == "unchanged" and result.exit_code == 0
    assert len(BackupStore(config_dir).generations()) == 1


def test_the_diff_masks_secrets(config_dir: Path) -> None:
    (config_dir / "settings.json").write_text(json.dumps(
        {"memory": {"redis": {"password": "rotated-secret-1"}}}))
    sync_to_base(config_dir)

    plan = plan_rollback(config_dir)

    assert "rotated-secret-1" not in plan.diff
    assert "change-me-redis-password" not in plan.diff
    assert "-    password: ********" in plan.diff
    assert "rotated-secret-1" not in json.dumps(plan.to_dict())


def test_a_recreated_settings_json_gets_back_its_owner_and_mode(config_dir: Path) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    settings = config_dir / "settings.json"
    # The GUI runs as the service's user and owns what it writes.
    os.chown(settings, 4321, 4321)
    settings.chmod(0o640)

    sync_to_base(config_dir)
    assert not settings.exists() or settings.stat().st_uid == 4321
    settings.unlink(missing_ok=True)
    rollback(config_dir)

    info = settings.stat()
    assert (info.st_uid, info.st_gid) == (4321, 4321)
    assert info.st_mode & 0o777 == 0o640
