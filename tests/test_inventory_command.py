"""``hotconf inventory``: listing, JSON, where the inventory is found, and errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main

INVENTORY = """
all:
  vars:
    ansible_user: deploy
    redis_url: "redis://:hunter2@127.0.0.1:6390/0"
  hosts:
    main: {connection: local, config_dir: /tmp/main}
  children:
    vms:
      hosts:
        vm1: {ansible_host: 127.0.0.1, ansible_port: 2201}
        vm2: {ansible_host: "::1", ansible_port: 2202}
"""


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent(INVENTORY).lstrip())
    return path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["inventory", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_table_lists_every_host_with_its_login(inventory_file: Path) -> None:
    code, out, _ = run("-i", str(inventory_file))

    assert code == 0
    assert f"{inventory_file}: 3 hosts" in out
    assert "deploy@127.0.0.1:2201" in out
    assert "deploy@[::1]:2202" in out
    assert "/tmp/main" in out


def test_table_masks_the_redis_password(inventory_file: Path) -> None:
    code, out, _ = run("-i", str(inventory_file))

    assert code == 0
    assert "redis://:********@127.0.0.1:6390/0" in out
    assert "hunter2" not in out


def test_json_holds_each_resolved_host(inventory_file: Path) -> None:
    code, out, _ = run("-i", str(inventory_file), "--json")

    assert code == 0
    body = json.loads(out)
    assert body["inventory"] == str(inventory_file)
    by_name = {host["name"]: host for host in body["hosts"]}
    assert list(by_name) == ["main", "vm1", "vm2"]
    assert by_name["vm1"]["port"] == 2201
    assert by_name["vm1"]["groups"] == ["vms"]
    assert by_name["main"]["connection"] == "local"
    assert "hunter2" not in out


def test_limit_selects_hosts(inventory_file: Path) -> None:
    code, out, _ = run("-i", str(inventory_file), "--limit", "vms:!vm2", "--json")

    assert code == 0
    assert [host["name"] for host in json.loads(out)["hosts"]] == ["vm1"]


def test_limit_that_matches_nothing_exits_2(inventory_file: Path) -> None:
    code, _, err = run("-i", str(inventory_file), "--limit", "vm3")

    assert code == 2
    assert "'vm3' matches no host or group" in err


def test_environment_names_the_inventory(inventory_file: Path) -> None:
    code, out, _ = run("--json", env={"HOTCONF_INVENTORY": str(inventory_file)})

    assert code == 0
    assert json.loads(out)["inventory"] == str(inventory_file)


def test_fleet_file_under_the_current_directory_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "fleet.yaml").write_text("all:\n  hosts:\n    solo:\n")
    monkeypatch.chdir(tmp_path)

    code, out, _ = run("--json", env={"HOTCONF_INVENTORY": ""})

    assert code == 0
    assert [host["name"] for host in json.loads(out)["hosts"]] == ["solo"]


def test_bad_inventory_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("all:\n  hosts:\n    vm1:\n      ansible_port: 70000\n")

    code, out, err = run("-i", str(path))

    assert code == 2
    assert out == ""
    assert err.strip() == (
        f"hotconf: {path}:4: ansible_port: 70000 is out of range; a TCP port is 1 to 65535"
    )


def test_repository_fleet_lists_six_hosts() -> None:
    fleet = Path(__file__).resolve().parent.parent / "inventory" / "fleet.yaml"

    code, out, _ = run("-i", str(fleet), "--json")

    assert code == 0
    assert len(json.loads(out)["hosts"]) == 6
