"""Sync-to-base as a library: fold, validate, back up, write; or refuse and change nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller.errors import ControllerError
from controller.sync import StalePlan, last_sync, plan_sync, sync_to_base
from hotconf.backups import BackupStore
from hotconf.errors import LockTimeout
from hotconf.snapshot import load_snapshot
from hotconf.version import content_version, read_managed_files

TESTS = Path(__file__).resolve().parent
EXAMPLE = TESTS.parent / "examples" / "autobot"
HELPER_ENV = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
UNSHARE = ["unshare", "--mount", "--map-root-user", "--propagation", "private"]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the example configuration: config.yaml, settings.json, data dirs."""
    directory = tmp_path / "autobot"
    shutil.copytree(EXAMPLE, directory)
    return directory


def snapshot_of_dir(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory`` with its bytes and inode: any write shows."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(directory))] = (path.read_bytes(), path.stat().st_ino)
    return found


def write_settings(directory: Path, tree: object) -> None:
    (directory / "settings.json").write_text(json.dumps(tree, indent=2))


def test_sync_folds_settings_keeping_the_effective_configuration(config_dir: Path) -> None:
    before = load_snapshot(config_dir, {})
    original = read_managed_files(config_dir)

    result = sync_to_base(config_dir)

    after = load_snapshot(config_dir, {})
    assert result.status == "synced" and result.exit_code == 0
    assert after.values == before.values
    assert len(result.changes) == 4
    assert result.version_before == content_version(original)
    assert result.version_after == after.version
    assert "# AutoBot base configuration" in (config_dir / "config.yaml").read_text()
    assert json.loads((config_dir / "settings.json").read_text()) == {
        "prompts": json.loads(original["settings.json"])["prompts"]}
    assert result.generation is not None
    assert BackupStore(config_dir).read(result.generation) == original


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_the_settings_file_left_behind_keeps_its_owner_and_mode(config_dir: Path) -> None:
    settings = config_dir / "settings.json"
    os.chown(settings, 4321, 4321)
    settings.chmod(0o664)

    sync_to_base(config_dir)

    status = settings.stat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o777) == (4321, 4321, 0o664)


def test_settings_without_kept_sections_move_into_the_backups(config_dir: Path) -> None:
    write_settings(config_dir, {"ui": {"theme": "light"}})
    settings = (config_dir / "settings.json").read_bytes()

    result = sync_to_base(config_dir)

    assert not (config_dir / "settings.json").exists()
    assert result.generation is not None
    assert BackupStore(config_dir).read(result.generation)["settings.json"] == settings
    assert "moved into the backups" in result.message
    assert load_snapshot(config_dir, {}).get("ui.theme") == "light"


def test_environment_overrides_never_reach_the_file(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOBOT_REDIS_PASSWORD", "env-only-secret-42")
    monkeypatch.setenv("AUTOBOT_BACKEND_PORT", "9999")

    result = sync_to_base(config_dir)

    text = (config_dir / "config.yaml").read_text()
    assert "env-only-secret-42" not in text and "9999" not in text
    assert "change-me-redis-password" in text
    assert "env-only-secret-42" not in json.dumps(result.to_dict())


def test_secrets_are_masked_in_the_diff_and_the_result(config_dir: Path) -> None:
    write_settings(config_dir, {"memory": {"redis": {"password": "brand-new-secret"}},
                                "backend": {"llm": {"openai": {"api_key": "sk-live-123"}}}})

    plan = plan_sync(config_dir)

    body = json.dumps(plan.to_dict())
    for secret in ("brand-new-secret", "sk-live-123", "change-me-redis-password"):
        assert secret not in plan.diff
        assert secret not in body
    assert "+    password: ********" in plan.diff
    assert "+      api_key: ********" in plan.diff


def test_a_critical_result_is_refused_and_nothing_changes(config_dir: Path) -> None:
    write_settings(config_dir, {"ui": "dark"})
    before = snapshot_of_dir(config_dir)

    result = sync_to_base(config_dir)

    assert result.status == "refused"
    assert result.exit_code == 3
    assert any("'ui' must be a mapping" in finding.message for finding in result.report)
    assert snapshot_of_dir(config_dir) == before


def test_a_settings_file_that_does_not_parse_is_refused(config_dir: Path) -> None:
    (config_dir / "settings.json").write_text('{"ui": {"theme": "dark",}}\n')
    before = read_managed_files(config_dir)

    result = sync_to_base(config_dir)

    assert result.status == "refused" and result.exit_code == 3
    assert [finding.source for finding in result.report] == ["settings.json:1"]
    assert "not valid JSON" in result.report.findings[0].message
    assert read_managed_files(config_dir) == before
    assert BackupStore(config_dir).generations() == []


def test_no_settings_file_means_nothing_to_sync(config_dir: Path) -> None:
    (config_dir / "settings.json").unlink()
    before = snapshot_of_dir(config_dir)

    result = sync_to_base(config_dir)

    assert result.status == "nothing_to_sync" and result.exit_code == 0
    assert "nothing to sync" in result.message
    assert snapshot_of_dir(config_dir) == before


def test_settings_that_change_nothing_write_nothing(config_dir: Path) -> None:
    write_settings(config_dir, {"ui": {"theme": "auto"}, "prompts": {"a": "b"}})
    before = read_managed_files(config_dir)

    result = sync_to_base(config_dir)

    assert result.status == "unchanged" and result.exit_code == 0
    assert read_managed_files(config_dir) == before
    assert sorted(os.listdir(config_dir)) == ["config.yaml", "data", "logs", "settings.json"]


def test_a_plan_writes_nothing(config_dir: Path) -> None:
    before = snapshot_of_dir(config_dir)

    plan = plan_sync(config_dir)

    assert plan.status == "ready"
    added = [line for line in plan.diff.splitlines() if line.startswith("+ ")]
    assert len(added) == 4
    assert snapshot_of_dir(config_dir) == before


def test_files_changed_after_the_plan_are_not_overwritten(config_dir: Path) -> None:
    plan = plan_sync(config_dir)
    write_settings(config_dir, {"ui": {"theme": "light"}})

    with pytest.raises(StalePlan, match="changed since the sync was shown"):
        sync_to_base(config_dir, expected_version=plan.version_before)

    assert json.loads((config_dir / "settings.json").read_text()) == {"ui": {"theme": "light"}}
    assert BackupStore(config_dir).generations() == []


def test_a_lock_held_by_a_live_process_times_out_by_name(config_dir: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, str(TESTS / "lock_worker.py"), "hold", str(config_dir / "config.yaml")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=HELPER_ENV,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == f"held {holder.pid}\n"
        before = read_managed_files(config_dir)

        with pytest.raises(LockTimeout) as caught:
            sync_to_base(config_dir, lock_timeout=0.2)

        assert f"pid {holder.pid}" in str(caught.value)
        assert str(config_dir / "config.yaml") in str(caught.value)
        assert read_managed_files(config_dir) == before
    finally:
        holder.communicate("", timeout=10)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ControllerError, match="does not exist") as caught:
        sync_to_base(tmp_path / "absent")

    assert str(tmp_path / "absent") in str(caught.value)


def test_read_only_directory_fails_cleanly(config_dir: Path) -> None:
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")
    completed = subprocess.run(
        [*UNSHARE, sys.executable, str(TESTS / "fault_writer.py"), "sync-readonly",
         str(config_dir)],
        capture_output=True, text=True, env=HELPER_ENV, timeout=50, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    outcome = json.loads(completed.stdout)

    assert outcome["type"] == "FileWriteError"
    assert "Read-only file system" in outcome["error"]
    assert outcome["files_unchanged"] is True


def test_only_the_newest_generations_are_kept(config_dir: Path) -> None:
    for theme in ("dark", "light", "auto", "dark"):
        write_settings(config_dir, {"ui": {"theme": theme}, "chat": {"max_messages": 150}})
        sync_to_base(config_dir, keep=2)
        (config_dir / "config.yaml").write_text(
            (config_dir / "config.yaml").read_text() + f"# after {theme}\n")

    assert len(BackupStore(config_dir).generations()) == 2


def test_last_sync_is_recorded(config_dir: Path) -> None:
    assert last_sync(config_dir) is None

    result = sync_to_base(config_dir)

    record = last_sync(config_dir)
    assert record is not None and result.finished_at is not None
    assert record["time"] == result.finished_at.isoformat()
    assert record["version_after"] == result.version_after
