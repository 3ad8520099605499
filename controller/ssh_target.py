"""A host reached over SSH and SFTP: the push and status target for ``connection: ssh``.

One SSH connection and one SFTP session per host, opened by ``connect`` and held
until ``close``, so a run pays the handshake once per host whatever it does there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncssh

from controller.connection import CONNECT_TIMEOUT_S, connect
from controller.errors import HostError
from controller.inventory import Host
from controller.push_plan import AppliedPush, PushPlan, plan_push
from controller.remote_files import RemoteConfigDir

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0


class SshTarget:
    """``controller.targets.HostTarget`` over SFTP; see ``controller.remote_files``."""

    def __init__(
        self,
        host: Host,
        *,
        accept_new_host_keys: bool = False,
        record_new_host_keys: bool = True,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.accept_new_host_keys = accept_new_host_keys
        self.record_new_host_keys = record_new_host_keys
        self.connect_timeout = connect_timeout
        self._connection: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._remote: RemoteConfigDir | None = None
        # What read_files last saw, so write_files plans against the state the caller
        # compared with instead of reading the files a second time.
        self._last_read: dict[str, bytes] | None = None

    @property
    def remote(self) -> RemoteConfigDir:
        """The host's config directory; ``connect`` first."""
        if self._remote is None:
            raise RuntimeError(f"{self.host.name}: connect() before using the target")
        return self._remote

    async def connect(self) -> None:
        """Open the SSH connection and the SFTP session; a second call does nothing."""
        if self._remote is not None:
            return
        connection = await connect(
            self.host, accept_new_host_keys=self.accept_new_host_keys,
            record_new_host_keys=self.record_new_host_keys,
            timeout=self.connect_timeout,
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                sftp = await connection.start_sftp_client()
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            connection.close()
            why = str(exc) or f"no answer within {self.connect_timeout:g} s"
            raise HostError(
                f"the SSH server did not start SFTP ({why}); hotconf needs only SFTP: check "
                "for 'Subsystem sftp internal-sftp' in the host's sshd_config",
                host=self.host.name, address=self.host.address, port=self.host.port,
            ) from exc
        self._connection, self._sftp = connection, sftp
        self._remote = RemoteConfigDir(sftp, self.host)

    async def read_files(self) -> dict[str, bytes]:
        """The managed files on the host, by name."""
        self._last_read = await self.remote.read_files()
        return dict(self._last_read)

    async def plan(self, files: dict[str, bytes]) -> PushPlan:
        """What ``write_files(files)`` would change; reads only."""
        current = self._last_read if self._last_read is not None else await self.read_files()
        return plan_push(current, files)

    async def write_files(self, files: dict[str, bytes]) -> None:
        """Back up, then make the host's managed files exactly ``files``.

        Only the files that differ are written; the others keep their mtime.
        """
        await self.apply(await self.plan(files))

    async def apply(self, plan: PushPlan) -> AppliedPush:
        """Carry out ``plan`` on the host (see ``RemoteConfigDir.apply``)."""
        self._last_read = None
        applied = await self.remote.apply(plan)
        self._last_read = dict(plan.wanted)
        return applied

    async def read_status(self) -> dict[str, Any] | None:
        """The agent's status.json on the host, or None when there is none yet."""
        return await self.remote.read_status()

    async def close(self) -> None:
        """Close the SFTP session and the connection; safe to call twice."""
        sftp, connection = self._sftp, self._connection
        self._sftp = self._connection = self._remote = None
        self._last_read = None
        if sftp is not None:
            sftp.exit()
        if connection is not None:
            connection.close()
            with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await connection.wait_closed()

    async def __aenter__(self) -> SshTarget:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

