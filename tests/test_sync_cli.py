"""The sync, sync-status, history and rollback commands as a user runs them."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from controller.cli import main
from hotconf.version import read_managed_files

TESTS = Path(__file__).resolve().parent
EXAMPLE = TESTS.parent / "examples" / "autobot"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "autobot"
    shutil.copytree(EXAMPLE, directory)
    return directory


def hotconf(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"HOTCONF_CONFIG_DIR": None})


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def answer_on_a_terminal(config_dir: Path, command: str, answer: str) -> tuple[int, str]:
    """Run ``hotconf COMMAND`` with a pseudo-terminal as stdin; answer its question."""
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "controller", command, "--config-dir", str(config_dir)],
        stdin=terminal, stdout=subprocess.PIPE, stderr=terminal, text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 30
    try:
        while b"[y/N]" not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no question asked; saw {seen!r}"
            ready, _, _ = select.select([controller], [], [], remaining)
            if ready:
                seen += os.read(controller, 4096)
        os.write(controller, answer.encode() + b"\n")
        stdout, _ = process.communicate(timeout=30)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, stdout


def test_dry_run_shows_the_diff_and_writes_nothing(config_dir: Path) -> None:
    before = read_managed_files(config_dir)

    result = hotconf("sync", "--dry-run", "--config-dir", str(config_dir))

    assert result.exit_code == 0
    assert "+  theme: dark" in result.stdout
    assert "ui.theme: \"auto\" -> \"dark\"" in result.stdout
    assert "kept in settings.json (never in the base): prompts" in result.stdout
    assert "dry run: nothing written" in result.stdout
    assert read_managed_files(config_dir) == before
    assert not (config_dir / ".hotconf").exists()


def test_changes_show_text_as_written(config_dir: Path) -> None:
    (config_dir / "settings.json").write_text(
        json.dumps({"chat": {"default_prompt": "été ☀"}}), encoding="utf-8"
    )

    result = hotconf("sync", "--dry-run", "--config-dir", str(config_dir))

    assert result.exit_code == 0
    assert 'chat.default_prompt: "default" -> "été ☀"' in result.stdout


def test_without_yes_and_without_a_terminal_it_refuses(config_dir: Path) -> None:
    before = read_managed_files(config_dir)

    result = hotconf("sync", "--config-dir", str(config_dir))

    assert result.exit_code == 2
    assert "Pass --yes" in result.stderr
    assert read_managed_files(config_dir) == before


def test_yes_json_syncs(config_dir: Path) -> None:
    result = hotconf("sync", "--yes", "--json", "--config-dir", str(config_dir))

    assert result.exit_code == 0
    body = as_json(result)
    assert body["status"] == "synced"
    assert len(body["changes"]) == 4
    assert body["backup"]["files"][1] == {"name": "settings.json", "size": 307}
    assert body["validation"]["summary"]["critical"] == 0


def test_critical_result_exits_3_with_the_findings(config_dir: Path) -> None:
    (config_dir / "settings.json").write_text('{"chat": [1, 2]}')

    result = hotconf("sync", "--yes", "--config-dir", str(config_dir))

    assert result.exit_code == 3
    assert "sync refused" in result.stdout
    assert "'chat' must be a mapping" in result.stdout


def test_nothing_to_sync_needs_no_terminal(config_dir: Path) -> None:
    (config_dir / "settings.json").unlink()

    result = hotconf("sync", "--config-dir", str(config_dir))

    assert result.exit_code == 0
    assert "nothing to sync" in result.stdout


def test_a_missing_config_dir_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = hotconf("sync", "--yes", "--config-dir", str(tmp_path / "absent"))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"hotconf: {tmp_path / 'absent'}: the config directory")


def test_sync_status_before_and_after(config_dir: Path) -> None:
    before = as_json(hotconf("sync-status", "--json", "--config-dir", str(config_dir)))
    hotconf("sync", "--yes", "--config-dir", str(config_dir))
    after = as_json(hotconf("sync-status", "--json", "--config-dir", str(config_dir)))

    assert before["settings_file_exists"] is True and before["can_sync"] is True
    assert before["changes"] == 4 and before["backup_exists"] is False
    assert before["last_sync"] is None
    assert before["validation_summary"]["critical"] == 0
    assert after["settings_file_exists"] is True  # it holds the prompts now
    assert after["can_sync"] is False and after["changes"] == 0
    assert after["backup_exists"] is True and after["last_sync"] is not None


def test_history_lists_generations_newest_first(config_dir: Path) -> None:
    assert "no backup generations yet" in hotconf(
        "history", "--config-dir", str(config_dir)).stdout
    hotconf("sync", "--yes", "--config-dir", str(config_dir))
    hotconf("rollback", "--yes", "--config-dir", str(config_dir))

    body = as_json(hotconf("history", "--json", "--config-dir", str(config_dir)))
    text = hotconf("history", "--config-dir", str(config_dir)).stdout

    reasons = [row["reason"] for row in body["generations"]]
    assert reasons == ["rollback", "sync"]
    assert [row["current"] for row in body["generations"]] == [False, True]
    assert body["generations"][1]["size"] == sum(
        item["size"] for item in body["generations"][1]["files"])
    assert text.splitlines()[1].startswith(body["generations"][0]["id"])
    assert text.splitlines()[2].endswith("(current)")


def test_rollback_yes_json_and_refusals(config_dir: Path) -> None:
    started = read_managed_files(config_dir)
    hotconf("sync", "--yes", "--config-dir", str(config_dir))

    refused = hotconf("rollback", "--config-dir", str(config_dir))
    done = hotconf("rollback", "--yes", "--json", "--config-dir", str(config_dir))
    unknown = hotconf("rollback", "nope", "--yes", "--config-dir", str(config_dir))

    assert refused.exit_code == 2
    assert done.exit_code == 0 and as_json(done)["status"] == "rolled_back"
    assert read_managed_files(config_dir) == started
    assert unknown.exit_code == 1 and "hotconf history" in unknown.stderr


def test_keep_backups_limits_the_generations(config_dir: Path) -> None:
    hotconf("sync", "--yes", "--config-dir", str(config_dir))
    for _ in range(3):
        hotconf("rollback", "--yes", "--keep-backups", "1", "--config-dir", str(config_dir))

    body = as_json(hotconf("history", "--json", "--config-dir", str(config_dir)))
    assert len(body["generations"]) == 1


def test_a_yes_on_the_terminal_syncs(config_dir: Path) -> None:
    code, stdout = answer_on_a_terminal(config_dir, "sync", "y")

    assert code == 0
    assert "synced 4 key(s) into config.yaml" in stdout
    assert "theme: dark" in (config_dir / "config.yaml").read_text()


def test_a_no_on_the_terminal_changes_nothing(config_dir: Path) -> None:
    before = read_managed_files(config_dir)

    code, _ = answer_on_a_terminal(config_dir, "sync", "n")

    assert code == 1
    assert read_managed_files(config_dir) == before
    assert not (config_dir / ".hotconf").exists()
