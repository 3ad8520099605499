"""``hotconf inventory --check`` against real sshd hosts on loopback ports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.sshd import SshFleet

from controller.cli import main
from hotconf.version import content_version

pytestmark = pytest.mark.integration

CONFIG = b"backend:\n  server_port: 8001\n"
SETTINGS = b'{"ui": {"theme": "dark"}}\n'


def check(inventory: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main, ["inventory", "-i", str(inventory), "--check", "--json", "--timeout", "10",
               *extra],
    )
    assert result.stdout, result.stderr
    body = json.loads(result.stdout)
    return result.exit_code, {host["name"]: host["check"] for host in body["hosts"]}


def snapshot_tree(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(directory)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*")) if path.is_file()
    }


@pytest.fixture
def fleet(sshd_fleet_factory: Any) -> SshFleet:
    started: SshFleet = sshd_fleet_factory(2)
    (started["vm1"].config_dir / "config.yaml").write_bytes(CONFIG)
    (started["vm1"].config_dir / "settings.json").write_bytes(SETTINGS)
    return started


def test_healthy_hosts_report_key_dir_and_version(fleet: SshFleet, tmp_path: Path) -> None:
    inventory = fleet.write_inventory(tmp_path / "fleet.yaml")

    code, checks = check(inventory)

    assert code == 0
    vm1, vm2 = checks["vm1"], checks["vm2"]
    assert vm1["ok"] and vm1["reachable"] and vm1["authenticated"]
    assert vm1["host_key"] == "ok"
    assert vm1["config_dir_state"] == "ok"
    assert vm1["files"] == ["config.yaml", "settings.json"]
    assert vm1["version"] == content_version(
        {"config.yaml": CONFIG, "settings.json": SETTINGS}
    )
    assert vm2["ok"] and vm2["files"] == [] and vm2["version"] is None


def test_check_changes_nothing_anywhere(fleet: SshFleet, tmp_path: Path) -> None:
    inventory = fleet.write_inventory(tmp_path / "fleet.yaml")
    before = {host.name: snapshot_tree(host.config_dir) for host in fleet}
    known_hosts = fleet.known_hosts.read_bytes()

    check(inventory)

    assert {host.name: snapshot_tree(host.config_dir) for host in fleet} == before
    assert fleet.known_hosts.read_bytes() == known_hosts


def test_unknown_host_key_is_refused_with_its_fingerprint(
    fleet: SshFleet, tmp_path: Path
) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    inventory = fleet.write_inventory(tmp_path / "fleet.yaml", known_hosts=str(empty))
    # The fixture's per-host known_hosts would win over the group's: drop it.
    document = yaml.safe_load(inventory.read_text())
    for variables in document["all"]["hosts"].values():
        variables.pop("known_hosts")
    inventory.write_text(yaml.safe_dump(document))

    code, checks = check(inventory)

    assert code == 1
    for host in fleet:
        assert checks[host.name]["reachable"] is True
        assert checks[host.name]["host_key"] == "unknown"
        assert checks[host.name]["fingerprint"] == host.fingerprint
        assert checks[host.name]["authenticated"] is False
    assert empty.read_text() == ""


def test_changed_host_key_is_refused(fleet: SshFleet, tmp_path: Path) -> None:
    inventory = fleet.write_inventory(tmp_path / "fleet.yaml")
    new_fingerprint = fleet["vm2"].replace_host_key()

    code, checks = check(inventory)

    assert code == 1
    assert checks["vm1"]["ok"] is True
    assert checks["vm2"]["host_key"] == "changed"
    assert checks["vm2"]["fingerprint"] == new_fingerprint
    assert checks["vm2"]["problem"]


def test_stopped_host_is_unreachable_and_the_others_are_checked(
    fleet: SshFleet, tmp_path: Path
) -> None:
    inventory = fleet.write_inventory(tmp_path / "fleet.yaml")
    fleet["vm2"].stop()

    code, checks = check(inventory)

    assert code == 1
    assert checks["vm1"]["ok"] is True
    assert checks["vm2"]["reachable"] is False
    assert checks["vm2"]["host_key"] == "not checked"
    assert "vm2" in checks["vm2"]["problem"]


def test_missing_config_dir_says_what_to_do(fleet: SshFleet, tmp_path: Path) -> None:
    inventory = fleet.write_inventory(tmp_path / "fleet.yaml")
    document = yaml.safe_load(inventory.read_text())
    document["all"]["hosts"]["vm2"]["config_dir"] = str(tmp_path / "absent")
    inventory.write_text(yaml.safe_dump(document))

    code, checks = check(inventory)

    assert code == 1
    assert checks["vm2"]["reachable"] is True
    assert checks["vm2"]["config_dir_state"] == "missing"
    assert "does not exist" in checks["vm2"]["problem"]


def test_limit_checks_only_the_selected_hosts(fleet: SshFleet, tmp_path: Path) -> None:
    inventory = fleet.write_inventory(tmp_path / "fleet.yaml")
    fleet["vm2"].stop()

    code, checks = check(inventory, "--limit", "vm1")

    assert code == 0
    assert list(checks) == ["vm1"]


def test_local_host_is_checked_on_this_disk(tmp_path: Path) -> None:
    config_dir = tmp_path / "main"
    config_dir.mkdir()
    (config_dir / "config.yaml").write_bytes(CONFIG)
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text(
        f"all:\n  hosts:\n    main: {{connection: local, config_dir: {config_dir}}}\n"
        f"    gone: {{connection: local, config_dir: {tmp_path / 'absent'}}}\n"
    )

    code, checks = check(inventory)

    assert code == 1
    assert checks["main"]["ok"] is True
    assert checks["main"]["host_key"] == "local"
    assert checks["main"]["version"] == content_version({"config.yaml": CONFIG})
    assert checks["gone"]["config_dir_state"] == "missing"


def test_text_output_lists_hosts_and_problems(fleet: SshFleet, tmp_path: Path) -> None:
    inventory = fleet.write_inventory(tmp_path / "fleet.yaml")
    fleet["vm2"].stop()

    result = CliRunner().invoke(main, ["inventory", "-i", str(inventory), "--check"])

    assert result.exit_code == 1
    assert "problems:" in result.stdout
    assert "1 of 2 hosts ready for push" in result.stdout
    assert os.fspath(fleet["vm1"].config_dir) in result.stdout
