"""The errors hotconf raises.

Every error the project raises on purpose derives from ``HotconfError``, so an entry
point can turn any of them into one line and an exit code::

    HotconfError
    ├── ConfigRejected        a configuration with CRITICAL findings was refused
    ├── FileWriteError        an atomic write failed; the target is untouched
    ├── LockTimeout           another process held a file lock past the timeout
    ├── BackupError           a backup generation is missing or cannot be read
    └── BusMessageError       a Redis message is malformed or badly signed

The controller and the agent extend this tree in their own ``errors`` modules.
Messages name the thing, the bad value and what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotconf.findings import Finding


class HotconfError(Exception):
    """The root of every error hotconf raises on purpose."""

    exit_code = 1


class ConfigRejected(HotconfError):
    """A configuration has CRITICAL findings and must not be served."""

    exit_code = 3

    def __init__(self, message: str, findings: Sequence[Finding]) -> None:
        super().__init__(message)
        self.findings = list(findings)


class FileWriteError(HotconfError):
    """An atomic write failed; the target file is as it was before."""


class LockTimeout(HotconfError):
    """A file lock stayed held by another process past the timeout."""

    exit_code = 4

    def __init__(self, message: str, *, holder_pid: int | None = None) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid


class BackupError(HotconfError):
    """A backup generation is missing, incomplete or unreadable."""


class BusMessageError(HotconfError):
    """A message on the Redis bus is malformed or carries a bad signature."""
