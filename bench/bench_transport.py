"""The SSH transport alone (no agents, no Redis), against real OpenSSH sshd on loopback.

- one host: SSH handshake with host key check and key authentication, then SFTP open;
- five hosts at once over fresh connections: a changed config landed (backup, temp,
  fsync, rename), and the same with nothing to change (read and compare only).

The full push with agents reporting is ``bench_push``; these figures say how much of
it the transport takes.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from bench.timing import Figures, sample_ms
from controller.inventory import Host
from controller.ssh_target import SshTarget

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "tests"))

from support.sshd import (  # noqa: E402
    SshClientKey,
    SshdHost,
    SshFleet,
    generate_ed25519_key,
    privsep_dir,
)

CONFIG = (REPOSITORY / "examples" / "autobot" / "config.yaml").read_bytes()


def run(figures: Figures) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as temp, privsep_dir():
        work = Path(temp)
        key_path = work / "id_ed25519"
        key = SshClientKey(key_path, generate_ed25519_key(key_path, getpass.getuser()))
        fleet = SshFleet(work / "fleet", key, [f"vm{index}" for index in range(1, 6)])
        fleet.start()
        try:
            hosts = [_inventory_host(server) for server in fleet]
            figures.add_median_ms(
                "transport: connect + SFTP open, one host",
                sample_ms(lambda: asyncio.run(_connect_only(hosts[0])), repeat=20),
            )
            counter = iter(range(1_000_000))
            figures.add_median_ms(
                "transport: changed config landed on 5 hosts, fresh connections",
                sample_ms(lambda: asyncio.run(_push(hosts, _changed(next(counter)))), repeat=15),
            )
            same = _changed(-1)
            figures.add_median_ms(
                "transport: nothing to change on 5 hosts, fresh connections",
                sample_ms(lambda: asyncio.run(_push(hosts, same)), repeat=15),
            )
        finally:
            fleet.stop()


def _inventory_host(server: SshdHost) -> Host:
    return Host(
        name=server.name, address=server.address, port=server.port, user=server.user,
        key_file=server.client_key, config_dir=PurePosixPath(str(server.config_dir)),
        known_hosts=server.known_hosts,
    )


def _changed(serial: int) -> dict[str, bytes]:
    return {"config.yaml": CONFIG + f"# push {serial}\n".encode()}


async def _connect_only(host: Host) -> None:
    async with SshTarget(host):
        pass


async def _push(hosts: Sequence[Host], files: dict[str, bytes]) -> None:
    async def one(host: Host) -> None:
        async with SshTarget(host) as target:
            await target.read_files()
            await target.write_files(files)

    async with asyncio.TaskGroup() as group:
        for host in hosts:
            group.create_task(one(host))
