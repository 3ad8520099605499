"""Where a push lands: one host's configuration directory, over SFTP or on this disk.

Both kinds follow DESIGN.md's "Push, one host": compare by content version, back
the current files up, write each file atomically, mirror settings.json's presence,
and read the agent's status.json back. The rollout only sees this protocol.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Protocol

from controller.inventory import Host
from hotconf.atomic import atomic_write
from hotconf.backups import BackupStore
from hotconf.version import MANAGED_FILES, read_managed_files

STATUS_FILE = Path(".hotconf") / "status.json"


class HostTarget(Protocol):
    """One host's configuration directory, for the length of one run."""

    host: Host

    async def connect(self) -> None:
        """Open what the target needs; raise a ControllerError saying why it cannot."""

    async def read_files(self) -> dict[str, bytes]:
        """The managed files present on the host, by name."""

    async def write_files(self, files: dict[str, bytes]) -> None:
        """Back up, then make the host's managed files exactly ``files``."""

    async def read_status(self) -> dict[str, Any] | None:
        """The agent's status.json, or None when there is none yet."""

    async def close(self) -> None:
        """Release the connection; safe to call twice."""


class LocalTarget:
    """A host whose inventory says ``connection: local``: the main host itself."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.config_dir = Path(str(host.config_dir))

    async def connect(self) -> None:
        return None

    async def read_files(self) -> dict[str, bytes]:
        return await asyncio.to_thread(read_managed_files, self.config_dir)

    async def write_files(self, files: dict[str, bytes]) -> None:
        await asyncio.to_thread(self._write_files, files)

    def _write_files(self, files: dict[str, bytes]) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        current = read_managed_files(self.config_dir)
        if current:
            BackupStore(self.config_dir).take(current, reason="push")
        # config.yaml last: an agent that wakes between the two writes sees an
        # unchanged base with the new overrides, never a half-new pair for long.
        for name in sorted(files, key=lambda name: name == "config.yaml"):
            atomic_write(self.config_dir / name, files[name])
        for name in MANAGED_FILES:
            if name not in files:
                (self.config_dir / name).unlink(missing_ok=True)

    async def read_status(self) -> dict[str, Any] | None:
        path = self.config_dir / STATUS_FILE
        try:
            text = await asyncio.to_thread(path.read_text)
        except FileNotFoundError:
            return None
        try:
            status = json.loads(text)
        except json.JSONDecodeError:
            return None  # caught mid-write by a non-atomic writer; the next read will do
        return status if isinstance(status, dict) else None

    async def close(self) -> None:
        return None
