"""The inventory: Ansible's YAML format resolved into host records, and --limit."""

from __future__ import annotations

import dataclasses
import getpass
import os
import textwrap
from pathlib import Path, PurePosixPath

import pytest

from controller.errors import InventoryError
from controller.host_patterns import select_hosts
from controller.inventory import Host, Inventory, default_inventory_path, load_inventory

REPO = Path(__file__).resolve().parent.parent


def write(directory: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(directory: Path, text: str) -> Inventory:
    return load_inventory(write(directory, text))


def load_error(directory: Path, text: str) -> InventoryError:
    path = write(directory, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return caught.value


def names(hosts: tuple[Host, ...]) -> list[str]:
    return [host.name for host in hosts]


class TestFleetInventory:
    def test_fleet_has_the_main_host_and_five_vms(self) -> None:
        inventory = load_inventory(REPO / "inventory" / "fleet.yaml")

        assert len(inventory.hosts) == 6
        local = [host for host in inventory.hosts if host.connection == "local"]
        assert names(tuple(local)) == ["main"]
        vms = inventory.select("vms")
        assert len(vms) == 5
        assert all(host.connection == "ssh" for host in vms)
        assert all(host.config_dir == PurePosixPath("/etc/autobot") for host in vms)
        assert len({host.address for host in inventory.hosts}) == 6

    def test_canary_group_is_one_vm(self) -> None:
        inventory = load_inventory(REPO / "inventory" / "fleet.yaml")

        assert names(inventory.select("canary")) == ["vm1-frontend"]


class TestResolution:
    def test_defaults_fill_what_is_not_written(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              hosts:
                alpha:
        """)

        host = inventory.host("alpha")
        assert host == Host(
            name="alpha",
            address="alpha",
            port=22,
            user=getpass.getuser(),
            key_file=None,
            config_dir=PurePosixPath("/etc/autobot"),
            connection="ssh",
            redis_url=None,
            known_hosts=None,
            bus_key_file=None,
            groups=("ungrouped",),
        )

    def test_ansible_connection_variables_are_honoured(self, tmp_path: Path) -> None:
        key = tmp_path / "id_fleet"
        key.write_text("not really a key\n")
        inventory = load(tmp_path, """
            all:
              hosts:
                alpha:
                  ansible_host: 127.0.0.1
                  ansible_port: 2201
                  ansible_user: deploy
                  ansible_ssh_private_key_file: id_fleet
                  config_dir: /srv/autobot
                  redis_url: redis://127.0.0.1:6390/0
                  known_hosts: known_hosts
                  bus_key_file: id_fleet
        """)

        host = inventory.host("alpha")
        assert (host.address, host.port, host.user) == ("127.0.0.1", 2201, "deploy")
        assert host.key_file == key
        assert host.config_dir == PurePosixPath("/srv/autobot")
        assert host.redis_url == "redis://127.0.0.1:6390/0"
        assert host.known_hosts == tmp_path / "known_hosts"
        assert host.bus_key_file == key

    def test_older_ansible_spellings_are_read(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              hosts:
                alpha:
                  ansible_ssh_host: 127.0.0.2
                  ansible_ssh_port: "2202"
                  ansible_ssh_user: old
        """)

        host = inventory.host("alpha")
        assert (host.address, host.port, host.user) == ("127.0.0.2", 2202, "old")

    @pytest.mark.parametrize(
        ("written", "expected"),
        [("connection: local", "local"), ("ansible_connection: local", "local"),
         ("ansible_connection: smart", "ssh"), ("connection: ssh", "ssh")],
    )
    def test_connection_spellings(self, tmp_path: Path, written: str, expected: str) -> None:
        inventory = load(tmp_path, f"""
            all:
              hosts:
                alpha:
                  {written}
        """)

        assert inventory.host("alpha").connection == expected

    def test_precedence_all_then_parent_then_child_then_host(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              vars:
                ansible_port: 1001
                ansible_user: from-all
                config_dir: /from/all
                redis_url: redis://127.0.0.1:1/0
              children:
                parent:
                  vars:
                    ansible_port: 1002
                    ansible_user: from-parent
                    config_dir: /from/parent
                  children:
                    child:
                      vars:
                        ansible_port: 1003
                        ansible_user: from-child
                      hosts:
                        alpha:
                          ansible_port: 1004
        """)

        host = inventory.host("alpha")
        assert host.port == 1004
        assert host.user == "from-child"
        assert host.config_dir == PurePosixPath("/from/parent")
        assert host.redis_url == "redis://127.0.0.1:1/0"
        assert host.groups == ("parent", "child")

    def test_child_wins_even_when_written_before_its_parent(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              children:
                child:
                  vars: {ansible_user: from-child}
                  hosts: {alpha: }
                parent:
                  vars: {ansible_user: from-parent}
                  children: {child: }
        """)

        assert inventory.host("alpha").user == "from-child"

    def test_sibling_groups_of_equal_depth_apply_by_name(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              children:
                zulu:
                  vars: {ansible_user: from-zulu}
                  hosts: {alpha: }
                alpha_group:
                  vars: {ansible_user: from-alpha-group}
                  hosts: {alpha: }
        """)

        assert inventory.host("alpha").user == "from-zulu"

    def test_host_in_two_groups_merges_its_variables(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              children:
                one:
                  hosts:
                    alpha: {ansible_port: 2001}
                two:
                  hosts:
                    alpha: {ansible_user: twice}
        """)

        host = inventory.host("alpha")
        assert (host.port, host.user) == (2001, "twice")
        assert set(host.groups) == {"one", "two"}
        assert len(inventory.hosts) == 1

    def test_group_named_twice_is_one_group(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              children:
                parent:
                  children:
                    shared:
                      hosts: {alpha: }
                other:
                  children:
                    shared:
                      hosts: {beta: }
        """)

        assert names(inventory.select("shared")) == ["alpha", "beta"]
        assert names(inventory.select("other")) == ["alpha", "beta"]

    def test_host_ranges_expand(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              hosts:
                web[01:03]:
                  ansible_port: 2200
                db-[a:b]:
                odd[1:5:2]:
        """)

        assert names(inventory.hosts) == [
            "web01", "web02", "web03", "db-a", "db-b", "odd1", "odd3", "odd5"
        ]
        assert inventory.host("web02").port == 2200

    def test_top_level_groups_beside_all_are_its_children(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              vars: {ansible_user: everyone}
            webservers:
              hosts: {web1: }
        """)

        assert inventory.host("web1").user == "everyone"
        assert inventory.host("web1").groups == ("webservers",)

    def test_relative_config_dir_of_a_local_host_is_inventory_relative(
        self, tmp_path: Path
    ) -> None:
        inventory = load(tmp_path, """
            all:
              hosts:
                main: {connection: local, config_dir: demo/main}
        """)

        assert inventory.host("main").config_dir == PurePosixPath(tmp_path / "demo" / "main")

    def test_variables_hotconf_does_not_use_are_ignored(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              vars:
                http_port: 80
                ansible_become: true
                ansible_python_interpreter: /usr/bin/python3
                vault_value: !vault |
                  $ANSIBLE_VAULT;1.1;AES256
                  6162636465
              hosts:
                alpha:
        """)

        assert inventory.host("alpha").port == 22

    def test_anchors_and_merge_keys_work(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              vars: &common
                ansible_user: shared
              hosts:
                alpha:
                  <<: *common
                  ansible_port: 2300
        """)

        assert (inventory.host("alpha").user, inventory.host("alpha").port) == ("shared", 2300)

    def test_host_records_are_frozen(self, tmp_path: Path) -> None:
        host = load(tmp_path, "all: {hosts: {alpha: }}").host("alpha")

        with pytest.raises(dataclasses.FrozenInstanceError):
            host.port = 2222  # type: ignore[misc]

    def test_describe_masks_a_password_in_redis_url(self, tmp_path: Path) -> None:
        inventory = load(tmp_path, """
            all:
              hosts:
                alpha: {redis_url: "redis://:hunter2@127.0.0.1:6379/0"}
        """)

        described = inventory.host("alpha").describe()
        assert described["redis_url"] == "redis://:********@127.0.0.1:6379/0"
        assert "hunter2" not in repr(described)


class TestErrors:
    """Every refusal names the file and the line, and says what to do."""

    def assert_points_at(self, error: InventoryError, tmp_path: Path, line: int) -> None:
        assert error.path == tmp_path / "inventory.yaml"
        assert error.line == line
        assert str(error).startswith(f"{tmp_path / 'inventory.yaml'}:{line}: ")

    @pytest.mark.parametrize("text", ["", "webservers:\n  hosts: {a: }\n", "all\n", "- all\n"])
    def test_no_all_at_the_top_level(self, tmp_path: Path, text: str) -> None:
        error = load_error(tmp_path, text)

        assert "all:" in str(error)
        assert error.path == tmp_path / "inventory.yaml"

    def test_unknown_group_key_suggests_the_right_one(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              children:
                vms:
                  host:
                    alpha:
        """)

        self.assert_points_at(error, tmp_path, 4)
        assert "unknown key 'host'" in str(error)
        assert "did you mean 'hosts'?" in str(error)

    @pytest.mark.parametrize(
        ("variable", "suggestion"),
        [("ansible_prot", "ansible_port"), ("confg_dir", "config_dir"),
         ("redis_ulr", "redis_url"), ("ansible_hots", "ansible_host")],
    )
    def test_misspelled_variable_suggests_the_right_one(
        self, tmp_path: Path, variable: str, suggestion: str
    ) -> None:
        error = load_error(tmp_path, f"""
            all:
              hosts:
                alpha:
                  {variable}: 2222
        """)

        self.assert_points_at(error, tmp_path, 4)
        assert f"did you mean {suggestion!r}?" in str(error)

    def test_duplicate_host_in_one_mapping(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              hosts:
                alpha:
                  ansible_port: 2201
                beta:
                alpha:
                  ansible_port: 2202
        """)

        self.assert_points_at(error, tmp_path, 6)
        assert "duplicate host 'alpha'" in str(error)
        assert "first at line 3" in str(error)

    def test_duplicate_host_through_a_range(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              hosts:
                web[1:3]:
                web2:
        """)

        self.assert_points_at(error, tmp_path, 4)
        assert "duplicate host 'web2'" in str(error)

    def test_duplicate_variable_in_one_mapping(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              vars:
                ansible_user: one
                ansible_user: two
        """)

        self.assert_points_at(error, tmp_path, 4)
        assert "duplicate variable 'ansible_user'" in str(error)

    def test_two_spellings_of_one_variable_in_one_mapping(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              hosts:
                alpha:
                  ansible_port: 2201
                  ansible_ssh_port: 2202
        """)

        self.assert_points_at(error, tmp_path, 5)
        assert "keep one" in str(error)

    @pytest.mark.parametrize("port", ["0", "70000", "-1", "ssh", "true", "[22]"])
    def test_port_out_of_range_or_not_a_number(self, tmp_path: Path, port: str) -> None:
        error = load_error(tmp_path, f"""
            all:
              hosts:
                alpha:
                  ansible_port: {port}
        """)

        self.assert_points_at(error, tmp_path, 4)
        assert "ansible_port" in str(error)

    def test_port_message_gives_the_range(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, "all:\n  vars:\n    ansible_port: 70000\n")

        self.assert_points_at(error, tmp_path, 3)
        assert "70000 is out of range; a TCP port is 1 to 65535" in str(error)

    def test_missing_key_file(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              vars:
                ansible_ssh_private_key_file: keys/absent
              hosts: {alpha: }
        """)

        self.assert_points_at(error, tmp_path, 3)
        assert str(tmp_path / "keys" / "absent") in str(error)

    def test_key_file_that_is_a_directory(self, tmp_path: Path) -> None:
        (tmp_path / "keys").mkdir()
        error = load_error(tmp_path, "all:\n  vars:\n    ansible_ssh_private_key_file: keys\n")

        self.assert_points_at(error, tmp_path, 3)
        assert "not a file" in str(error)

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file, whatever its mode")
    def test_unreadable_key_file(self, tmp_path: Path) -> None:
        key = tmp_path / "id_fleet"
        key.write_text("secret\n")
        key.chmod(0)
        error = load_error(tmp_path, "all:\n  vars:\n    ansible_ssh_private_key_file: id_fleet\n")

        self.assert_points_at(error, tmp_path, 3)
        assert "not readable" in str(error)

    def test_missing_bus_key_file(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, "all:\n  vars:\n    bus_key_file: /nonexistent/bus.key\n")

        self.assert_points_at(error, tmp_path, 3)
        assert "bus_key_file" in str(error)

    def test_group_cycle_names_the_loop(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              children:
                a:
                  children:
                    b:
                      children:
                        c:
                          children:
                            a:
        """)

        self.assert_points_at(error, tmp_path, 9)
        assert "group cycle: a -> b -> c -> a" in str(error)

    def test_group_containing_itself(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              children:
                a:
                  children:
                    a:
        """)

        self.assert_points_at(error, tmp_path, 5)
        assert "group cycle: a -> a" in str(error)

    def test_group_containing_all(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              children:
                a:
                  children:
                    all:
        """)

        assert "group cycle: all -> a -> all" in str(error)

    def test_recursive_yaml_alias_is_refused(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all: &loop
              children:
                again: *loop
        """)

        assert "refers to itself" in str(error)

    @pytest.mark.parametrize(
        "variable",
        ["ansible_password", "ansible_ssh_pass", "ansible_become_password", "ansible_sudo_pass"],
    )
    def test_passwords_are_refused(self, tmp_path: Path, variable: str) -> None:
        error = load_error(tmp_path, f"""
            all:
              hosts:
                alpha:
                  {variable}: hunter2
        """)

        self.assert_points_at(error, tmp_path, 4)
        assert "keys only" in str(error)
        assert "hunter2" not in str(error)

    def test_bad_yaml_points_at_the_line(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, "all:\n  hosts:\n    alpha: {ansible_port: 22\n")

        assert error.line is not None
        assert "not valid YAML" in str(error)

    def test_bad_connection(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, "all:\n  hosts:\n    alpha: {connection: telnet}\n")

        self.assert_points_at(error, tmp_path, 3)
        assert "use ssh or local" in str(error)

    def test_redis_url_of_another_scheme_is_refused_with_the_password_masked(
        self, tmp_path: Path
    ) -> None:
        error = load_error(tmp_path, "all:\n  vars:\n    redis_url: http://:pw@127.0.0.1/\n")

        self.assert_points_at(error, tmp_path, 3)
        assert "redis://" in str(error)
        assert ":pw@" not in str(error)

    def test_relative_config_dir_on_an_ssh_host(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, """
            all:
              vars:
                config_dir: autobot
              hosts:
                alpha:
        """)

        self.assert_points_at(error, tmp_path, 3)
        assert "absolute" in str(error)

    def test_hosts_written_as_a_list(self, tmp_path: Path) -> None:
        error = load_error(tmp_path, "all:\n  hosts:\n    - alpha\n")

        self.assert_points_at(error, tmp_path, 3)
        assert "must be a mapping" in str(error)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(InventoryError, match="no such inventory file"):
            load_inventory(tmp_path / "absent.yaml")


@pytest.fixture
def fleet(tmp_path: Path) -> Inventory:
    return load(tmp_path, """
        all:
          hosts:
            main: {connection: local}
          children:
            vms:
              hosts:
                vm1-frontend:
                vm2-npu-worker:
                vm3-redis:
            canary:
              hosts:
                vm1-frontend:
            web:
              hosts:
                vm1-frontend:
                vm2-npu-worker:
    """)


class TestLimit:
    @pytest.mark.parametrize(
        ("pattern", "expected"),
        [
            (None, ["main", "vm1-frontend", "vm2-npu-worker", "vm3-redis"]),
            ("", ["main", "vm1-frontend", "vm2-npu-worker", "vm3-redis"]),
            ("all", ["main", "vm1-frontend", "vm2-npu-worker", "vm3-redis"]),
            ("*", ["main", "vm1-frontend", "vm2-npu-worker", "vm3-redis"]),
            ("vm3-redis", ["vm3-redis"]),
            ("vms", ["vm1-frontend", "vm2-npu-worker", "vm3-redis"]),
            ("vm*-r*", ["vm3-redis"]),
            ("main:canary", ["main", "vm1-frontend"]),
            ("vm3-redis,main", ["main", "vm3-redis"]),
            ("vms:!vm3-redis", ["vm1-frontend", "vm2-npu-worker"]),
            ("vms:!canary", ["vm2-npu-worker", "vm3-redis"]),
            ("vms:&web", ["vm1-frontend", "vm2-npu-worker"]),
            ("vms:&web:!canary", ["vm2-npu-worker"]),
            ("!canary:vms", ["vm2-npu-worker", "vm3-redis"]),
            ("!vms", ["main"]),
            ("&web", ["vm1-frontend", "vm2-npu-worker"]),
            ("~vm[12]-.*", ["vm1-frontend", "vm2-npu-worker"]),
            ("ungrouped", ["main"]),
            ("all:!all", []),
        ],
    )
    def test_patterns_select_as_ansible_does(
        self, fleet: Inventory, pattern: str | None, expected: list[str]
    ) -> None:
        assert names(select_hosts(fleet, pattern)) == expected

    def test_a_term_that_matches_nothing_is_an_error_with_suggestions(
        self, fleet: Inventory
    ) -> None:
        with pytest.raises(InventoryError) as caught:
            select_hosts(fleet, "vms:!vm3-rdis")

        assert "'vm3-rdis' matches no host or group" in str(caught.value)
        assert "vm3-redis" in str(caught.value)

    def test_subscripts_are_refused(self, fleet: Inventory) -> None:
        with pytest.raises(InventoryError, match="subscripts"):
            select_hosts(fleet, "vms[0]")

    def test_lone_operator_is_refused(self, fleet: Inventory) -> None:
        with pytest.raises(InventoryError, match="lone & or !"):
            select_hosts(fleet, "vms:!")

    def test_bad_regex_is_refused(self, fleet: Inventory) -> None:
        with pytest.raises(InventoryError, match="regular expression"):
            select_hosts(fleet, "~vm(")


class TestDefaultInventoryPath:
    def test_environment_comes_first(self, tmp_path: Path) -> None:
        (tmp_path / "inventory").mkdir()
        write(tmp_path / "inventory", "all: {}", "fleet.yaml")

        chosen = default_inventory_path({"HOTCONF_INVENTORY": "/srv/fleet.yaml"}, tmp_path)

        assert chosen == Path("/srv/fleet.yaml")

    def test_then_the_fleet_file_under_the_current_directory(self, tmp_path: Path) -> None:
        (tmp_path / "inventory").mkdir()
        write(tmp_path / "inventory", "all: {}", "fleet.yaml")

        assert default_inventory_path({}, tmp_path) == tmp_path / "inventory" / "fleet.yaml"

    def test_none_found_says_what_was_tried(self, tmp_path: Path) -> None:
        if Path("/etc/hotconf/inventory.yaml").exists():
            pytest.skip("this machine has a system inventory")

        with pytest.raises(InventoryError) as caught:
            default_inventory_path({}, tmp_path)

        assert "HOTCONF_INVENTORY" in str(caught.value)
        assert "inventory/fleet.yaml" in str(caught.value)
