"""A fleet on this machine: embedded SSH servers standing in for the VMs' sshd.

``make demo`` and the benchmarks need five "VMs" on a machine that may have no sshd.
Each stand-in is an asyncssh server on a free loopback port, with its own host key,
key authentication only, and SFTP as the only thing it serves (no shell, as a VM
that restricts the push user to internal-sftp). They serve this machine's files, so
each VM's config_dir is its own directory under the fleet's work directory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import yaml

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class FleetLayout:
    """Where a local fleet lives: one config dir per host, keys, known_hosts, inventory."""

    root: Path
    main_host: str
    vms: tuple[str, ...]

    @property
    def client_key(self) -> Path:
        return self.root / "keys" / "controller_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "keys" / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    def config_dir(self, host: str) -> Path:
        return self.root / "hosts" / host

    @property
    def hosts(self) -> tuple[str, ...]:
        return (self.main_host, *self.vms)


class EmbeddedSshFleet:
    """The VMs' SSH servers, run on an event loop in a thread of their own."""

    def __init__(self, layout: FleetLayout) -> None:
        self.layout = layout
        self.ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncssh.SSHAcceptor] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="demo-sshd",
                                        daemon=True)

    def start(self, *, redis_url: str | None = None) -> None:
        """Create keys, start one server per VM and write the inventory."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start_servers(), self._loop)
        future.result(timeout=30)
        write_inventory(self.layout, self.ports, redis_url=redis_url)

    def stop(self) -> None:
        """Close every server and the loop; safe to call twice."""
        if not self._thread.is_alive():
            return

        async def close_all() -> None:
            for server in self._servers:
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start_servers(self) -> None:
        keys = self.layout.client_key.parent
        keys.mkdir(parents=True, exist_ok=True)
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment="hotconf-demo")
        client_key.write_private_key(str(self.layout.client_key))
        self.layout.client_key.chmod(0o600)
        authorized = asyncssh.import_authorized_keys(
            client_key.export_public_key().decode())

        known_hosts_lines = []
        for name in self.layout.vms:
            self.layout.config_dir(name).mkdir(parents=True, exist_ok=True)
            host_key = asyncssh.generate_private_key("ssh-ed25519")
            server = await asyncssh.listen(
                LOOPBACK, 0, server_host_keys=[host_key], authorized_client_keys=authorized,
                sftp_factory=True, allow_scp=False, password_auth=False,
                kbdint_auth=False, encoding=None,
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.ports[name] = port
            public = host_key.export_public_key().decode().strip()
            known_hosts_lines.append(f"[{LOOPBACK}]:{port} {public}")
        self.layout.known_hosts.write_text("\n".join(known_hosts_lines) + "\n")


def write_inventory(layout: FleetLayout, ports: dict[str, int], *,
                    redis_url: str | None) -> None:
    """An Ansible-style inventory of the local fleet: the main host and its VMs."""
    shared: dict[str, object] = {
        "ansible_user": _current_user(),
        "ansible_ssh_private_key_file": str(layout.client_key),
        "known_hosts": str(layout.known_hosts),
    }
    if redis_url:
        shared["redis_url"] = redis_url
    inventory = {
        "all": {
            "vars": shared,
            "hosts": {
                layout.main_host: {"connection": "local",
                                   "config_dir": str(layout.config_dir(layout.main_host))},
            },
            "children": {
                "vms": {
                    "hosts": {
                        name: {"ansible_host": LOOPBACK, "ansible_port": ports[name],
                               "config_dir": str(layout.config_dir(name))}
                        for name in layout.vms
                    },
                },
            },
        },
    }
    layout.inventory.write_text(yaml.safe_dump(inventory, sort_keys=False))


def _current_user() -> str:
    import getpass

    return getpass.getuser()


@contextmanager
def embedded_fleet(layout: FleetLayout, *, redis_url: str | None = None
                   ) -> Iterator[EmbeddedSshFleet]:
    """Run the VMs' SSH servers for the length of a ``with`` block."""
    fleet = EmbeddedSshFleet(layout)
    fleet.start(redis_url=redis_url)
    try:
        yield fleet
    finally:
        fleet.stop()
