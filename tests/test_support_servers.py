"""The test servers themselves: real redis-server and sshd, checked with real clients."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from pathlib import Path

import pytest
import redis
import support.processes
import support.sshd
import yaml
from support.processes import ServerStartError
from support.redis_server import RedisServer
from support.sshd import PRIVSEP_DIR, SshdHost, SshFleet, privsep_dir

pytestmark = pytest.mark.integration


def refuses_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def openssh_options(host: SshdHost, known_hosts: Path | None = None) -> list[str]:
    """Options that make the OpenSSH client ignore the user's own files."""
    return [
        "-F", "/dev/null",
        "-i", str(host.client_key),
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts or host.known_hosts}",
        "-o", "ConnectTimeout=10",
    ]


def run_sftp(
    host: SshdHost, batch: str, known_hosts: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sftp", *openssh_options(host, known_hosts), "-P", str(host.port), "-b", "-",
         f"{host.user}@{host.address}"],
        input=batch, capture_output=True, text=True, timeout=30, check=False,
    )


def scan_host_key(host: SshdHost) -> str:
    result = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", "-p", str(host.port), host.address],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return result.stdout.split(maxsplit=1)[1].strip()


class TestRedisServer:
    def test_real_client_can_set_and_get(self, redis_server: RedisServer) -> None:
        client = redis.Redis.from_url(redis_server.url)
        try:
            client.set("greeting", "hello")
            assert client.get("greeting") == b"hello"
        finally:
            client.close()

    def test_listens_on_loopback_only(self, redis_server: RedisServer) -> None:
        assert redis_server.host == "127.0.0.1"
        assert redis_server.command("CONFIG", "GET", "bind") == b"*2"

    def test_stop_then_restart_on_the_same_port(self, redis_server: RedisServer) -> None:
        port = redis_server.port
        first_pid = redis_server.pid

        redis_server.stop()
        assert not redis_server.running
        assert refuses_connections(redis_server.host, port)

        redis_server.restart()
        assert redis_server.port == port
        assert redis_server.pid != first_pid
        assert redis_server.command("PING") == b"+PONG"

    def test_kill_breaks_a_connected_client(self, redis_server: RedisServer) -> None:
        client = redis.Redis.from_url(redis_server.url, retry_on_timeout=False)
        try:
            assert client.ping()

            redis_server.kill()

            with pytest.raises(redis.ConnectionError):
                client.ping()
        finally:
            client.close()

    def test_restart_forgets_data(self, redis_server: RedisServer) -> None:
        redis_server.command("SET", "k", "v")

        redis_server.restart()

        assert redis_server.command("DBSIZE") == b":0"

    def test_a_taken_fixed_port_is_a_clear_start_error(
        self, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        rival = RedisServer(tmp_path / "rival", port=redis_server.port)

        with pytest.raises(ServerStartError, match="Address already in use"):
            rival.start()
        assert not rival.running

    def test_a_port_taken_before_the_bind_is_swapped_for_a_fresh_one(
        self, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fresh = support.processes.free_port
        offered = iter([redis_server.port])
        monkeypatch.setattr(support.processes, "free_port", lambda: next(offered, None) or fresh())
        second = RedisServer(tmp_path / "second")
        assert second.port == redis_server.port

        second.start()
        try:
            assert second.port != redis_server.port
            assert second.command("PING") == b"+PONG"
        finally:
            second.stop()

    @pytest.mark.parametrize("round_", [1, 2])
    def test_shared_server_is_empty_for_each_test(self, redis_url: str, round_: int) -> None:
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.dbsize() == 0
            client.set(f"left-by-round-{round_}", "x")
        finally:
            client.close()


class TestSshFleet:
    def test_hosts_have_their_own_ports_keys_and_dirs(self, ssh_fleet: SshFleet) -> None:
        assert ssh_fleet.names == ["vm1", "vm2", "vm3"]
        assert len({host.port for host in ssh_fleet}) == 3
        assert len({host.fingerprint for host in ssh_fleet}) == 3
        assert len({host.config_dir for host in ssh_fleet}) == 3
        assert all(host.config_dir.is_dir() for host in ssh_fleet)
        assert PRIVSEP_DIR.is_dir()

    def test_fingerprint_is_the_one_ssh_keygen_prints(self, ssh_host: SshdHost) -> None:
        printed = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(ssh_host.host_key_path.with_suffix(".pub"))],
            capture_output=True, text=True, check=True,
        ).stdout

        assert printed.split()[1] == ssh_host.fingerprint

    def test_known_hosts_holds_each_live_host_key(self, ssh_fleet: SshFleet) -> None:
        lines = ssh_fleet.known_hosts.read_text().splitlines()

        for host in ssh_fleet:
            assert f"[127.0.0.1]:{host.port} {scan_host_key(host)}" in lines

    def test_openssh_sftp_logs_in_with_the_client_key(self, ssh_fleet: SshFleet) -> None:
        host = ssh_fleet["vm2"]
        local = host.sshd_dir.parent / "upload.txt"
        local.write_text("pushed\n")

        result = run_sftp(host, f"put {local} {host.config_dir}/config.yaml\n")

        assert result.returncode == 0, result.stderr
        assert (host.config_dir / "config.yaml").read_text() == "pushed\n"

    def test_sftp_only_host_runs_no_command(self, ssh_host: SshdHost) -> None:
        result = subprocess.run(
            ["ssh", *openssh_options(ssh_host), "-p", str(ssh_host.port),
             f"{ssh_host.user}@{ssh_host.address}", "echo", "shell-ran"],
            capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
        )

        assert "shell-ran" not in result.stdout

    def test_password_login_is_refused(self, ssh_host: SshdHost) -> None:
        result = subprocess.run(
            ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
             "-o", f"UserKnownHostsFile={ssh_host.known_hosts}", "-p", str(ssh_host.port),
             f"{ssh_host.user}@{ssh_host.address}", "true"],
            capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
        )

        assert result.returncode == 255
        assert "Permission denied" in result.stderr

    def test_stop_refuses_and_restart_serves_the_same_port_and_key(
        self, ssh_host: SshdHost
    ) -> None:
        port, key = ssh_host.port, ssh_host.host_public_key

        ssh_host.stop()
        assert refuses_connections(ssh_host.address, port)

        ssh_host.restart()
        assert ssh_host.port == port
        assert scan_host_key(ssh_host) == " ".join(key.split()[:2])
        assert run_sftp(ssh_host, "ls /\n").returncode == 0

    def test_replaced_host_key_is_refused_by_openssh(self, ssh_host: SshdHost) -> None:
        old = ssh_host.fingerprint

        new = ssh_host.replace_host_key()

        assert new != old
        assert scan_host_key(ssh_host) == " ".join(ssh_host.host_public_key.split()[:2])
        result = run_sftp(ssh_host, "ls /\n")
        assert result.returncode != 0
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr

    def test_kill_ends_sessions_in_flight(self, ssh_host: SshdHost) -> None:
        # An interactive sftp client waits on stdin, holding its session open.
        client = subprocess.Popen(
            ["sftp", *openssh_options(ssh_host), "-P", str(ssh_host.port),
             f"{ssh_host.user}@{ssh_host.address}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert client.stdout is not None
            client.stdin.write("pwd\n")  # type: ignore[union-attr]
            client.stdin.flush()  # type: ignore[union-attr]
            # sftp echoes the command, then answers it: the session is up once it answers.
            answered = any("Remote working directory" in line for line in
                           (client.stdout.readline(), client.stdout.readline()))
            assert answered
            assert ssh_host.session_pids()

            ssh_host.kill()

            # sftp notices the dead connection when it next talks to the server.
            with contextlib.suppress(BrokenPipeError):
                client.stdin.write("ls /\n")  # type: ignore[union-attr]
                client.stdin.flush()  # type: ignore[union-attr]
            assert client.wait(timeout=20) != 0
            assert not ssh_host.running
            assert ssh_host.session_pids() == []
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
            client.stdout.close()  # type: ignore[union-attr]
            client.stderr.close()  # type: ignore[union-attr]
            client.stdin.close()  # type: ignore[union-attr]

    def test_inventory_lists_every_host_with_its_variables(
        self, ssh_fleet: SshFleet, tmp_path: Path
    ) -> None:
        path = ssh_fleet.write_inventory(tmp_path / "inventory.yaml", redis_url="redis://x")

        inventory = yaml.safe_load(path.read_text())

        hosts = inventory["all"]["hosts"]
        assert list(hosts) == ["vm1", "vm2", "vm3"]
        assert hosts["vm3"]["ansible_port"] == ssh_fleet["vm3"].port
        assert hosts["vm3"]["config_dir"] == str(ssh_fleet["vm3"].config_dir)
        assert Path(hosts["vm1"]["ansible_ssh_private_key_file"]).stat().st_mode & 0o077 == 0
        assert inventory["all"]["vars"] == {"redis_url": "redis://x"}

    def test_unknown_host_name_lists_the_fleet(self, ssh_fleet: SshFleet) -> None:
        with pytest.raises(KeyError, match="vm1, vm2, vm3"):
            ssh_fleet["vm9"]


class TestPrivsepDir:
    @pytest.fixture
    def private_paths(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        # The real /run/sshd serves other sessions; exercise the logic on a stand-in.
        monkeypatch.setattr(support.sshd, "PRIVSEP_DIR", tmp_path / "run" / "sshd")
        monkeypatch.setattr(support.sshd, "PRIVSEP_LOCK", tmp_path / "privsep.lock")
        return tmp_path / "run" / "sshd"

    def test_created_directory_outlives_every_user_then_goes(self, private_paths: Path) -> None:
        with privsep_dir() as first:
            assert first == private_paths and first.is_dir()
            with privsep_dir():
                pass
            assert private_paths.is_dir(), "removed while the first user still runs sshd"
        assert not private_paths.exists()

    def test_last_user_out_removes_it_even_if_it_did_not_create_it(
        self, private_paths: Path
    ) -> None:
        first = privsep_dir()
        first.__enter__()
        with privsep_dir():
            first.__exit__(None, None, None)
            assert private_paths.is_dir()
        assert not private_paths.exists()

    def test_a_directory_that_existed_before_is_kept(self, private_paths: Path) -> None:
        private_paths.mkdir(parents=True)

        with privsep_dir():
            pass

        assert private_paths.is_dir()
