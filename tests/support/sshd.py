"""Real OpenSSH sshd servers for tests: a fleet of hosts on free loopback ports.

Each host is one ``/usr/sbin/sshd -D -e -f <config>`` with its own ed25519 host key,
its own directory and its own managed config directory (the VM's /etc/autobot). One
client key, generated once per session, is authorized for the current user on every
host through an absolute ``AuthorizedKeysFile``. Login is by that key only, and the
session is forced into ``internal-sftp`` (``sftp_only``), as a VM restricted to SFTP.

Layout of a fleet under its base directory::

    client/id_ed25519(.pub)   the client key (copied from the session key)
    authorized_keys           that key, for every host
    known_hosts               "[127.0.0.1]:PORT ssh-ed25519 ..." for every host
    <name>/sshd/              sshd_config, ssh_host_ed25519_key(.pub), sshd.log
    <name>/autobot/           config_dir: the host's managed configuration directory

Fixtures (registered by tests/conftest.py):

- ``ssh_client_key``: the session's client key (``SshClientKey``).
- ``sshd_fleet_factory``: ``factory(count=3, *, names=None, sftp_only=True)`` starts a
  new ``SshFleet``; every fleet it made is stopped at teardown. Use it for tests that
  stop, kill or re-key hosts.
- ``ssh_fleet``: a fresh fleet of three hosts, vm1..vm3.
- ``ssh_host``: a fresh single host, vm1.

sshd needs its privilege separation directory, /run/sshd; ``privsep_dir()`` creates it
when missing and removes it once its last concurrent user (test session, benchmark)
is done. Outside pytest, wrap fleets in ``with privsep_dir():``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import getpass
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .ports import LOOPBACK
from .processes import START_TIMEOUT_S, LoggedProcess, PortServer, ServerStartError

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
# Coordinates concurrent users of PRIVSEP_DIR; see privsep_dir(). It stays behind, empty.
PRIVSEP_LOCK = Path(tempfile.gettempdir()) / "hotconf-tests-run-sshd.lock"
_CREATED_MARK = b"created by hotconf tests\n"

_READY = re.compile(r"Server listening on \S+ port \d+")


@dataclass(frozen=True)
class SshClientKey:
    """A private key file without passphrase, and its public line."""

    private_key: Path
    public_key: str


class SshdHost(PortServer):
    """One sshd: a stand-in VM reachable at ``address:port`` as ``user``.

    Attributes a test or an inventory needs: ``name``, ``address``, ``port``, ``user``,
    ``config_dir`` (the managed directory), ``client_key`` (private key path),
    ``known_hosts`` (the fleet's file), ``host_public_key``, ``fingerprint``
    (``SHA256:...``, as ssh-keygen -l prints it), ``sshd_dir``, ``log_path``; and from
    ``PortServer``: ``start()``, ``stop()``, ``kill()``, ``restart()``, ``pid``, ``running``.
    """

    bind_failed = re.compile(r"Bind to port \d+ .* failed|Cannot bind any address")

    def __init__(
        self,
        name: str,
        base_dir: Path,
        *,
        client_key: Path,
        authorized_keys: Path,
        known_hosts: Path,
        sftp_only: bool = True,
    ) -> None:
        super().__init__()
        self.name = name
        self.address = LOOPBACK
        self.user = getpass.getuser()
        self.client_key = client_key
        self.authorized_keys = authorized_keys
        self.known_hosts = known_hosts
        self.sftp_only = sftp_only
        self.sshd_dir = base_dir / name / "sshd"
        self.config_dir = base_dir / name / "autobot"
        self.host_key_path = self.sshd_dir / "ssh_host_ed25519_key"
        self.log_path = self.sshd_dir / "sshd.log"

        self.sshd_dir.mkdir(parents=True)
        self.config_dir.mkdir(parents=True)
        self.host_public_key = generate_ed25519_key(self.host_key_path, f"{name}-host")

    @property
    def fingerprint(self) -> str:
        """The host key's ``SHA256:...`` fingerprint."""
        return fingerprint(self.host_public_key)

    def session_pids(self) -> list[int]:
        """Pids of the per-connection sshd processes serving clients right now."""
        return self._process.descendant_pids() if self._process else []

    def known_hosts_line(self) -> str:
        """This host's current key as a known_hosts line: ``[127.0.0.1]:PORT ssh-ed25519 ...``."""
        key_type, key_blob = self.host_public_key.split()[:2]
        return f"[{self.address}]:{self.port} {key_type} {key_blob}"

    def inventory_vars(self) -> dict[str, Any]:
        """Ansible-style host variables, plus hotconf's own, for an inventory file."""
        return {
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": str(self.client_key),
            "config_dir": str(self.config_dir),
            "connection": "ssh",
            "known_hosts": str(self.known_hosts),
        }

    def describe(self) -> dict[str, Any]:
        """Everything about this host as plain data (for logs and failure messages)."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "fingerprint": self.fingerprint,
            "config_dir": str(self.config_dir),
            "sshd_dir": str(self.sshd_dir),
            "client_key": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "pid": self.pid,
        }

    def kill_sessions(self) -> None:
        """SIGKILL only the sessions (clients drop mid-transfer); the listener stays up."""
        if self._process is not None:
            for pid in reversed(self._process.descendant_pids()):
                _kill_quietly(pid)

    def replace_host_key(self) -> str:
        """Give the host a new host key and return its fingerprint.

        The fleet's known_hosts keeps the old key, which makes this the "host key
        changed" case. A running sshd is restarted to serve the new key.
        """
        was_running = self.running
        self.stop()
        self.host_key_path.unlink()
        self.host_key_path.with_suffix(".pub").unlink()
        self.host_public_key = generate_ed25519_key(self.host_key_path, f"{self.name}-host")
        if was_running:
            self.start()
        return self.fingerprint

    def _launch(self) -> LoggedProcess:
        config = self._write_config()
        process = LoggedProcess([str(SSHD), "-D", "-e", "-f", str(config)], self.log_path, _READY)
        process.start()
        return process

    def _write_config(self) -> Path:
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.address}",
            f"HostKey {self.host_key_path}",
            "PidFile none",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"AllowUsers {self.user}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            # The temp directories sit under world-writable /tmp, which StrictModes refuses.
            "StrictModes no",
            "UseDNS no",
            "AllowAgentForwarding no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PermitTunnel no",
            "MaxStartups 200",
            "Subsystem sftp internal-sftp",
        ]
        if self.sftp_only:
            lines.append("ForceCommand internal-sftp")
        if _sshd_version() >= (9, 8):
            # Newer sshd penalises sources that fail or crash sessions; tests do both.
            lines.append("PerSourcePenalties no")
        config = self.sshd_dir / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _confirm(self) -> None:
        # sshd logs "listening" just before its accept loop; the banner proves it.
        with socket.create_connection((self.address, self.port), timeout=START_TIMEOUT_S) as conn:
            banner = conn.recv(256)
        if not banner.startswith(b"SSH-2.0-"):
            raise ServerStartError(
                f"sshd {self.name} on port {self.port} sent {banner!r}, not an SSH banner; "
                f"its log:\n{self._process.log_tail() if self._process else ''}"
            )


class SshFleet:
    """Several ``SshdHost`` sharing a client key, an authorized_keys and a known_hosts.

    Index it by position or by name: ``fleet[0]``, ``fleet["vm2"]``.
    """

    def __init__(
        self,
        base_dir: Path,
        client_key: SshClientKey,
        names: Sequence[str],
        *,
        sftp_only: bool = True,
    ) -> None:
        self.base_dir = base_dir
        base_dir.mkdir(parents=True, exist_ok=True)

        # A private copy of the client key keeps the session's key out of reach of a
        # test that edits or removes the fleet's files.
        client_dir = base_dir / "client"
        client_dir.mkdir()
        self.client_key = client_dir / "id_ed25519"
        shutil.copyfile(client_key.private_key, self.client_key)
        self.client_key.chmod(0o600)
        self.client_key.with_suffix(".pub").write_text(client_key.public_key + "\n")
        self.authorized_keys = base_dir / "authorized_keys"
        self.authorized_keys.write_text(client_key.public_key + "\n")
        self.known_hosts = base_dir / "known_hosts"

        self.hosts = [
            SshdHost(
                name,
                base_dir,
                client_key=self.client_key,
                authorized_keys=self.authorized_keys,
                known_hosts=self.known_hosts,
                sftp_only=sftp_only,
            )
            for name in names
        ]

    def __iter__(self) -> Iterator[SshdHost]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def __getitem__(self, key: int | str) -> SshdHost:
        if isinstance(key, int):
            return self.hosts[key]
        for host in self.hosts:
            if host.name == key:
                return host
        raise KeyError(f"no host named {key!r} in the fleet ({', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [host.name for host in self.hosts]

    def start(self) -> None:
        """Start every host (in parallel) and write known_hosts with their keys."""
        for host in self.hosts:
            host.spawn()
        for host in self.hosts:
            host.wait_ready()
        self.write_known_hosts()

    def stop(self) -> None:
        """Stop every host; safe to call twice."""
        for host in self.hosts:
            host.stop()

    def write_known_hosts(self, path: Path | None = None) -> Path:
        """Write every host's current key to ``path`` (default: the fleet's file)."""
        target = path or self.known_hosts
        target.write_text("".join(host.known_hosts_line() + "\n" for host in self.hosts))
        return target

    def inventory(self, **group_vars: Any) -> dict[str, Any]:
        """The fleet as an Ansible YAML inventory structure: ``{"all": {"hosts": ...}}``."""
        inventory: dict[str, Any] = {
            "all": {"hosts": {host.name: host.inventory_vars() for host in self.hosts}}
        }
        if group_vars:
            inventory["all"]["vars"] = dict(group_vars)
        return inventory

    def write_inventory(self, path: Path, **group_vars: Any) -> Path:
        """Write ``inventory(**group_vars)`` as YAML to ``path``."""
        path.write_text(yaml.safe_dump(self.inventory(**group_vars), sort_keys=False))
        return path


def generate_ed25519_key(path: Path, comment: str) -> str:
    """Create an ed25519 key pair without passphrase at ``path``; return the public line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def fingerprint(public_line: str) -> str:
    """``SHA256:<base64, unpadded>`` of a public key line, as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(public_line.split()[1])
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def ensure_privsep_dir() -> bool:
    """Create /run/sshd when missing and leave it; True if created.

    Prefer ``privsep_dir()``, which removes it again when the last user is done.
    """
    if PRIVSEP_DIR.is_dir():
        return False
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
    return True


@contextlib.contextmanager
def privsep_dir() -> Iterator[Path]:
    """/run/sshd for the length of the block, shared with concurrent users.

    Several test sessions and benchmarks may run at once, and sshd checks the
    directory on every connection, so it must outlive every one of them. Each user
    holds a shared lock on ``PRIVSEP_LOCK``; whoever creates the directory records so
    in that file; the last user out (the one that can take the lock exclusively)
    removes the directory when it was created this way. A directory that existed
    before is never removed.
    """
    fd = os.open(PRIVSEP_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
            os.pwrite(fd, _CREATED_MARK, 0)
        yield PRIVSEP_DIR
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another user still runs sshd; the last one out tidies up
        else:
            if os.pread(fd, len(_CREATED_MARK), 0) == _CREATED_MARK:
                with contextlib.suppress(FileNotFoundError, OSError):
                    PRIVSEP_DIR.rmdir()
                os.ftruncate(fd, 0)
        os.close(fd)


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@functools.cache
def _sshd_version() -> tuple[int, int]:
    result = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", result.stderr + result.stdout)
    if match is None:
        raise ServerStartError(f"cannot tell the version of {SSHD}: {result.stderr.strip()}")
    return int(match.group(1)), int(match.group(2))


@pytest.fixture(scope="session")
def sshd_privsep_dir() -> Iterator[Path]:
    """/run/sshd for the session (see ``privsep_dir``)."""
    if not SSHD.exists():
        raise ServerStartError(f"{SSHD} is missing; run: make system-packages")
    with privsep_dir() as path:
        yield path


@pytest.fixture(scope="session")
def ssh_client_key(tmp_path_factory: pytest.TempPathFactory) -> SshClientKey:
    """The session's client key pair, authorized on every fleet host."""
    path = tmp_path_factory.mktemp("ssh-client") / "id_ed25519"
    return SshClientKey(path, generate_ed25519_key(path, "hotconf-tests"))


FleetFactory = Callable[..., SshFleet]


@pytest.fixture
def sshd_fleet_factory(
    tmp_path_factory: pytest.TempPathFactory,
    ssh_client_key: SshClientKey,
    sshd_privsep_dir: Path,
) -> Iterator[FleetFactory]:
    """``factory(count=3, *, names=None, sftp_only=True) -> SshFleet``, started and ready."""
    fleets: list[SshFleet] = []

    def start_fleet(
        count: int = 3, *, names: Sequence[str] | None = None, sftp_only: bool = True
    ) -> SshFleet:
        chosen = list(names) if names is not None else [f"vm{i + 1}" for i in range(count)]
        fleet = SshFleet(
            tmp_path_factory.mktemp("fleet"), ssh_client_key, chosen, sftp_only=sftp_only
        )
        fleets.append(fleet)
        fleet.start()
        return fleet

    try:
        yield start_fleet
    finally:
        for fleet in fleets:
            fleet.stop()


@pytest.fixture
def ssh_fleet(sshd_fleet_factory: FleetFactory) -> SshFleet:
    """Three fresh hosts, vm1..vm3, with empty config dirs."""
    return sshd_fleet_factory(3)


@pytest.fixture
def ssh_host(sshd_fleet_factory: FleetFactory) -> SshdHost:
    """One fresh host, vm1, with an empty config dir."""
    return sshd_fleet_factory(1)[0]
