"""Push to hosts whose connection is local: the rules of a push without SSH or agents."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from hotconf.version import directory_version

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Path]:
    source = tmp_path / "source"
    shutil.copytree(EXAMPLE, source)
    hosts = {name: tmp_path / name for name in ("h1", "h2", "h3")}
    inventory = {"all": {"hosts": {name: {"connection": "local", "config_dir": str(path)}
                                   for name, path in hosts.items()}}}
    (tmp_path / "inventory.yaml").write_text(json.dumps(inventory))
    return {"source": source, "inventory": tmp_path / "inventory.yaml", **hosts}


def _push(fleet: dict[str, Path], *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["push", "-i", str(fleet["inventory"]), "--config-dir",
                                       str(fleet["source"]), "--json", *args])
    body = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, body


def test_no_wait_push_writes_every_host_and_a_second_push_writes_nothing(fleet) -> None:
    code, body = _push(fleet, "--no-wait")
    assert code == 0
    assert {host["result"] for host in body["hosts"]} == {"applied"}
    version = directory_version(fleet["source"])
    assert all(directory_version(fleet[name]) == version for name in ("h1", "h2", "h3"))

    mtimes = {name: (fleet[name] / "config.yaml").stat().st_mtime_ns for name in ("h1", "h2")}
    code, body = _push(fleet, "--no-wait")
    assert code == 0
    assert {host["result"] for host in body["hosts"]} == {"ok"}
    assert mtimes == {name: (fleet[name] / "config.yaml").stat().st_mtime_ns
                      for name in ("h1", "h2")}


def test_check_changes_nothing_and_says_what_would_change(fleet) -> None:
    code, body = _push(fleet, "--check")
    assert code == 0
    assert {host["result"] for host in body["hosts"]} == {"changed"}
    assert not (fleet["h1"] / "config.yaml").exists()
    assert "would change" in body["hosts"][0]["reason"]


def test_settings_json_presence_is_mirrored(fleet) -> None:
    _push(fleet, "--no-wait")
    assert (fleet["h1"] / "settings.json").exists()

    (fleet["source"] / "settings.json").unlink()
    code, _ = _push(fleet, "--no-wait")
    assert code == 0
    assert not (fleet["h1"] / "settings.json").exists()


def test_replaced_files_are_kept_in_a_backup_generation(fleet) -> None:
    fleet["h1"].mkdir()
    (fleet["h1"] / "config.yaml").write_text("backend: {}\n")
    _push(fleet, "--no-wait", "--limit", "h1")
    backups = list((fleet["h1"] / ".hotconf" / "backups").iterdir())
    assert any(path.name.startswith("config.yaml.") for path in backups)
    saved = next(path for path in backups if path.name.startswith("config.yaml."))
    assert saved.read_text() == "backend: {}\n"


def test_a_critical_config_is_refused_with_exit_3_and_nothing_pushed(fleet) -> None:
    text = (fleet["source"] / "config.yaml").read_text()
    (fleet["source"] / "config.yaml").write_text(text.replace("logging:", "loggin:"))
    result = CliRunner().invoke(main, ["push", "-i", str(fleet["inventory"]), "--config-dir",
                                       str(fleet["source"]), "--no-wait"])
    assert result.exit_code == 3
    assert "required section 'logging' is missing" in result.stderr
    assert "--force" in result.stderr
    assert not (fleet["h1"] / "config.yaml").exists()


def test_force_pushes_a_critical_config_but_never_one_that_does_not_parse(fleet) -> None:
    config = fleet["source"] / "config.yaml"
    config.write_text(config.read_text().replace("logging:", "loggin:"))
    code, _ = _push(fleet, "--no-wait", "--force")
    assert code == 0
    assert (fleet["h1"] / "config.yaml").read_text() == config.read_text()

    config.write_text("backend: [unclosed\n")
    result = CliRunner().invoke(main, ["push", "-i", str(fleet["inventory"]), "--config-dir",
                                       str(fleet["source"]), "--no-wait", "--force"])
    assert result.exit_code == 3
    assert "never pushes a file that does not parse" in result.stderr
    assert "unclosed" not in (fleet["h1"] / "config.yaml").read_text()


def test_diff_masks_secrets(fleet) -> None:
    fleet["h1"].mkdir()
    shutil.copy(fleet["source"] / "config.yaml", fleet["h1"] / "config.yaml")
    config = fleet["source"] / "config.yaml"
    config.write_text(config.read_text().replace("change-me-redis-password", "n3w-s3cret"))
    _code, body = _push(fleet, "--check", "--diff", "--limit", "h1")
    diff = body["hosts"][0]["diff"]
    assert "password" in diff
    assert "n3w-s3cret" not in diff and "change-me-redis-password" not in diff


def test_waiting_for_an_agent_that_is_not_there_fails_with_a_reason(fleet) -> None:
    code, body = _push(fleet, "--timeout", "0.3", "--limit", "h1")
    assert code == 1
    assert body["hosts"][0]["result"] == "failed"
    assert "did not report" in body["hosts"][0]["reason"]


def test_max_fail_zero_stops_starting_hosts_after_the_first_failure(fleet) -> None:
    code, body = _push(fleet, "--timeout", "0.2", "--batch", "1", "--max-fail", "0")
    assert code == 1
    assert [host["host"] for host in body["hosts"]] == ["h1"]
    assert body["untouched"] == ["h2", "h3"]
    assert "max-fail" in body["stopped_because"]


def test_a_canary_that_does_not_apply_stops_the_rollout(fleet) -> None:
    code, body = _push(fleet, "--timeout", "0.2", "--canary", "1")
    assert code == 1
    assert body["untouched"] == ["h2", "h3"]
    assert "canary" in body["stopped_because"]


def test_hosts_held_back_within_a_batch_are_named_with_the_reason(fleet) -> None:
    # h1's config_dir lies under a regular file, so writing there fails.
    (fleet["h1"].parent / "blocker").write_text("")
    inventory = json.loads(fleet["inventory"].read_text())
    inventory["all"]["hosts"]["h1"]["config_dir"] = str(fleet["h1"].parent / "blocker" / "h1")
    fleet["inventory"].write_text(json.dumps(inventory))

    code, body = _push(fleet, "--no-wait", "--forks", "1", "--max-fail", "0")
    assert code == 1
    assert [host["result"] for host in body["hosts"]] == ["failed"]
    assert body["untouched"] == ["h2", "h3"]
    assert "max-fail" in body["stopped_because"]


def test_a_host_never_read_shows_no_version_rather_than_none(fleet) -> None:
    (fleet["h1"].parent / "blocker").write_text("")
    inventory = json.loads(fleet["inventory"].read_text())
    inventory["all"]["hosts"]["h1"]["config_dir"] = str(fleet["h1"].parent / "blocker" / "h1")
    fleet["inventory"].write_text(json.dumps(inventory))

    result = CliRunner().invoke(main, ["push", "-i", str(fleet["inventory"]), "--config-dir",
                                       str(fleet["source"]), "--check", "--limit", "h1"])
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if line.startswith("h1 "))
    assert "failed" in line and "None" not in line


def _read_pty(fd: int, until: Callable[[bytes], bool], deadline: float) -> bytes:
    seen = b""
    while not until(seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_status_watch_on_a_terminal_is_a_live_table_that_ctrl_c_ends_cleanly(fleet) -> None:
    argv = [sys.executable, "-m", "controller", "status", "--watch", "-i",
            str(fleet["inventory"]), "--config-dir", str(fleet["source"])]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on a terminal
        os.execv(sys.executable, argv)
    try:
        deadline = time.monotonic() + 30
        shown = _read_pty(fd, lambda seen: b"Ctrl-C to stop" in seen, deadline)
        assert b"Ctrl-C to stop" in shown, shown.decode(errors="replace")
        assert all(name.encode() in shown for name in ("h1", "h2", "h3"))

        os.kill(pid, signal.SIGINT)
        rest = _read_pty(fd, lambda _seen: False, deadline)
        _, wait_status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert b"Traceback" not in shown + rest
