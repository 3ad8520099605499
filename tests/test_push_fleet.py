"""Push against a real fleet: OpenSSH sshd per host, a real agent per host, redis-server.

The faults of issue 5: a host down, a changed host key, Redis away and back, an
agent that rejects, a canary that fails, signed messages, and a push with nothing
to do writing nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_process import AgentProcess
from click.testing import CliRunner
from support.redis_server import RedisServer
from support.sshd import SshFleet

from controller.cli import main
from hotconf.version import directory_version

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"
REPORT_TIMEOUT = "15"

pytestmark = pytest.mark.integration


@dataclass
class LiveFleet:
    """Hosts with sshd and an agent each, the main host's files, and the inventory."""

    ssh: SshFleet
    agents: dict[str, AgentProcess]
    source: Path
    inventory: Path
    redis: RedisServer | None

    def push(self, *args: str) -> tuple[int, dict]:
        result = CliRunner().invoke(main, ["push", "-i", str(self.inventory), "--config-dir",
                                           str(self.source), "--json", "--timeout",
                                           REPORT_TIMEOUT, *args])
        assert result.stdout.strip().startswith("{"), result.output
        return result.exit_code, json.loads(result.stdout)

    def status(self, *args: str) -> tuple[int, dict]:
        result = CliRunner().invoke(main, ["status", "-i", str(self.inventory), "--config-dir",
                                           str(self.source), "--json", *args])
        return result.exit_code, json.loads(result.stdout)

    def by_host(self, body: dict) -> dict[str, dict]:
        return {host["host"]: host for host in body["hosts"]}


FleetMaker = Callable[..., LiveFleet]


@pytest.fixture
def live_fleet(sshd_fleet_factory, tmp_path: Path,
               redis_server: RedisServer) -> Iterator[FleetMaker]:
    started: list[AgentProcess] = []

    def make(count: int = 3, *, redis: bool = True, bus_key: Path | None = None) -> LiveFleet:
        ssh = sshd_fleet_factory(count)
        source = tmp_path / "main"
        shutil.copytree(EXAMPLE, source)
        # Yesterday's configuration, so every agent has something valid to serve.
        for host in ssh:
            shutil.copy(EXAMPLE / "config.yaml", host.config_dir / "config.yaml")
        group_vars: dict[str, str] = {}
        if redis:
            group_vars["redis_url"] = redis_server.url
        if bus_key is not None:
            group_vars["bus_key_file"] = str(bus_key)
        inventory = ssh.write_inventory(tmp_path / "inventory.yaml", **group_vars)

        agents: dict[str, AgentProcess] = {}
        for host in ssh:
            args = ["--host-id", host.name, "--debounce", "0.05"]
            if redis:
                args += ["--redis", redis_server.url]
            if bus_key is not None:
                args += ["--bus-key-file", str(bus_key)]
            agents[host.name] = AgentProcess(host.config_dir, args)
            started.append(agents[host.name])
        for agent in agents.values():
            agent.wait_for_status(lambda status: True)
        return LiveFleet(ssh, agents, source, inventory, redis_server if redis else None)

    yield make
    for agent in started:
        agent.stop()


def test_push_converges_every_host_and_a_second_push_writes_nothing(live_fleet) -> None:
    fleet = live_fleet(3)
    version = directory_version(fleet.source)

    code, body = fleet.push()
    assert code == 0, body
    assert {host["result"] for host in body["hosts"]} == {"applied"}
    for host in fleet.ssh:
        assert directory_version(host.config_dir) == version
        assert fleet.agents[host.name].status()["version"] == version

    mtimes = {host.name: [(host.config_dir / name).stat().st_mtime_ns
                          for name in ("config.yaml", "settings.json")] for host in fleet.ssh}
    code, body = fleet.push()
    assert code == 0
    assert {host["result"] for host in body["hosts"]} == {"ok"}
    assert mtimes == {host.name: [(host.config_dir / name).stat().st_mtime_ns
                                  for name in ("config.yaml", "settings.json")]
                      for host in fleet.ssh}

    code, status = fleet.status()
    assert code == 0
    assert status["converged"] and status["redis"]
    assert {row["source"] for row in status["hosts"]} == {"redis"}


def test_a_stopped_sshd_is_unreachable_and_the_rest_apply(live_fleet) -> None:
    fleet = live_fleet(3)
    fleet.ssh["vm2"].stop()

    code, body = fleet.push()
    hosts = fleet.by_host(body)
    assert code == 1
    assert hosts["vm2"]["result"] == "unreachable"
    assert str(fleet.ssh["vm2"].port) in hosts["vm2"]["reason"]
    assert hosts["vm1"]["result"] == hosts["vm3"]["result"] == "applied"

    fleet.ssh["vm2"].start()
    mtime = (fleet.ssh["vm1"].config_dir / "config.yaml").stat().st_mtime_ns
    code, body = fleet.push()
    hosts = fleet.by_host(body)
    assert code == 0, body
    assert hosts["vm2"]["result"] == "applied"
    assert hosts["vm1"]["result"] == hosts["vm3"]["result"] == "ok"
    assert (fleet.ssh["vm1"].config_dir / "config.yaml").stat().st_mtime_ns == mtime


def test_a_changed_host_key_is_refused_with_its_fingerprint(live_fleet) -> None:
    fleet = live_fleet(2)
    new_fingerprint = fleet.ssh["vm1"].replace_host_key()
    before = (fleet.ssh["vm1"].config_dir / "config.yaml").read_bytes()

    code, body = fleet.push()
    hosts = fleet.by_host(body)
    assert code == 1
    assert hosts["vm1"]["result"] == "failed"
    assert new_fingerprint in hosts["vm1"]["reason"]
    assert (fleet.ssh["vm1"].config_dir / "config.yaml").read_bytes() == before
    assert hosts["vm2"]["result"] == "applied"


def test_with_redis_down_reports_are_read_over_sftp_and_the_fast_path_returns(
        live_fleet) -> None:
    fleet = live_fleet(2)
    assert fleet.redis is not None
    fleet.redis.stop()

    code, body = fleet.push()
    assert code == 0, body
    assert {host["result"] for host in body["hosts"]} == {"applied"}
    code, status = fleet.status()
    assert not status["redis"]
    assert {row["source"] for row in status["hosts"]} == {"status.json"}

    fleet.redis.start()
    for agent in fleet.agents.values():
        agent.wait_for_log("Redis back")
    settings = fleet.source / "settings.json"
    settings.write_text(settings.read_text().replace('"dark"', '"light"'))
    code, body = fleet.push()
    assert code == 0, body
    code, status = fleet.status()
    assert status["redis"] and {row["source"] for row in status["hosts"]} == {"redis"}


def test_status_prefers_status_json_when_the_redis_entry_is_older(live_fleet) -> None:
    fleet = live_fleet(1)
    assert fleet.redis is not None
    code, _body = fleet.push()
    assert code == 0
    # The hash entry of an agent that has since lost Redis: an older report.
    old = json.dumps({"host": "vm1", "version": "0123456789ab", "state": "applied",
                      "summary": {"serving": "0123456789ab"}, "ts": 1.0})
    fleet.redis.command("HSET", "hotconf:status", "vm1", old)

    code, status = fleet.status()
    row = fleet.by_host(status)["vm1"]
    assert code == 0, status
    assert row["source"] == "status.json"
    assert row["serving"] == directory_version(fleet.source) and not row["drift"]

def test_an_agent_that_rejects_is_reported_with_its_findings(live_fleet) -> None:
    fleet = live_fleet(2)
    good = directory_version(fleet.ssh["vm1"].config_dir)
    config = fleet.source / "config.yaml"
    config.write_text(config.read_text().replace("\nlogging:", "\nloggin:"))

    code, body = fleet.push("--force")
    hosts = fleet.by_host(body)
    assert code == 1, body
    for name in ("vm1", "vm2"):
        assert hosts[name]["result"] == "rejected"
        assert "required section 'logging' is missing" in hosts[name]["reason"]
        assert hosts[name]["summary"]["critical"] == 1
    assert fleet.agents["vm1"].status()["serving"] == good

    code, status = fleet.status()
    rows = fleet.by_host(status)
    assert code == 1 and not status["converged"]
    assert rows["vm1"]["state"] == "rejected"
    assert rows["vm1"]["serving"] == good and rows["vm1"]["drift"]


def test_pushing_a_rejected_version_again_is_still_rejected_not_ok(live_fleet) -> None:
    fleet = live_fleet(1)
    config = fleet.source / "config.yaml"
    config.write_text(config.read_text().replace("\nlogging:", "\nloggin:"))
    code, body = fleet.push("--force")
    assert code == 1 and body["hosts"][0]["result"] == "rejected", body

    code, body = fleet.push("--force")
    assert code == 1, body
    assert body["hosts"][0]["result"] == "rejected"
    assert "required section 'logging' is missing" in body["hosts"][0]["reason"]


def test_files_in_place_with_the_agent_down_are_not_ok(live_fleet) -> None:
    fleet = live_fleet(2)
    fleet.agents["vm2"].stop()
    code, body = fleet.push("--timeout", "1")
    assert code == 1 and fleet.by_host(body)["vm2"]["result"] == "failed", body

    code, body = fleet.push("--timeout", "1")
    hosts = fleet.by_host(body)
    assert code == 1, body
    assert hosts["vm1"]["result"] == "ok"
    assert hosts["vm2"]["result"] == "failed"
    assert "files already in place" in hosts["vm2"]["reason"]
    assert "did not report" in hosts["vm2"]["reason"]

def test_a_rejecting_canary_leaves_the_other_hosts_untouched(live_fleet) -> None:
    fleet = live_fleet(3)
    before = (fleet.ssh["vm3"].config_dir / "config.yaml").read_bytes()
    config = fleet.source / "config.yaml"
    config.write_text(config.read_text().replace("\nmemory:", "\nmemoryx:"))

    code, body = fleet.push("--force", "--canary", "1")
    assert code == 1
    assert [host["host"] for host in body["hosts"]] == ["vm1"]
    assert body["untouched"] == ["vm2", "vm3"]
    assert (fleet.ssh["vm3"].config_dir / "config.yaml").read_bytes() == before


def test_signed_bus_messages_converge(live_fleet, tmp_path: Path) -> None:
    key = tmp_path / "bus.key"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    key.chmod(0o600)
    fleet = live_fleet(2, bus_key=key)

    code, body = fleet.push()
    assert code == 0, body
    code, status = fleet.status()
    assert status["redis"] and {row["source"] for row in status["hosts"]} == {"redis"}


def test_check_trusts_new_host_keys_for_the_run_but_records_nothing(
        sshd_fleet_factory, tmp_path: Path) -> None:
    ssh = sshd_fleet_factory(1)
    ssh.known_hosts.write_text("")
    inventory = ssh.write_inventory(tmp_path / "inventory.yaml")
    source = tmp_path / "main"
    shutil.copytree(EXAMPLE, source)
    base = ["push", "-i", str(inventory), "--config-dir", str(source), "--json",
            "--accept-new-host-keys"]

    result = CliRunner().invoke(main, [*base, "--check"])
    assert json.loads(result.stdout)["hosts"][0]["result"] == "changed", result.output
    assert ssh.known_hosts.read_text() == ""

    result = CliRunner().invoke(main, [*base, "--no-wait"])
    assert json.loads(result.stdout)["hosts"][0]["result"] == "applied", result.output
    assert ssh["vm1"].host_public_key.split()[1] in ssh.known_hosts.read_text()
