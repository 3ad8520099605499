"""The errors the controller raises.

They extend ``hotconf.errors``::

    HotconfError
    └── ControllerError           something on the ops side went wrong
        ├── InventoryError        an inventory file is missing or invalid, or a
        │                         --limit pattern matches nothing
        └── HostError             one host of the fleet could not be worked with
            ├── HostUnreachable   no SSH connection: refused, timed out, name unknown,
            │                     or the connection dropped
            ├── HostKeyRefused    the host's key is unknown or has changed
            ├── AuthenticationFailed  the host refused our key, or the key is unusable
            └── RemoteFileError   an SFTP step failed on the host

Messages name the file and line, the bad value and what to do next.
"""

from __future__ import annotations

from pathlib import Path

from hotconf.errors import HotconfError


class ControllerError(HotconfError):
    """The root of the controller's errors."""


class InventoryError(ControllerError):
    """An inventory is missing or invalid, or a host pattern selects nothing.

    ``path`` and ``line`` (1-based) say where, when the error points into a file.
    """

    exit_code = 2

    def __init__(
        self, message: str, *, path: Path | None = None, line: int | None = None
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class HostError(ControllerError):
    """One host could not be worked with; the others carry on.

    ``host`` is the inventory name, ``address`` and ``port`` where it was reached,
    ``reason`` the message without them.
    ``unreachable`` tells a push to count the host as unreachable rather than failed.
    """

    unreachable = False

    def __init__(self, message: str, *, host: str, address: str, port: int) -> None:
        super().__init__(f"{host} ({_where(address, port)}): {message}")
        self.reason = message
        self.host = host
        self.address = address
        self.port = port


class HostUnreachable(HostError):
    """No SSH connection to the host: refused, timed out, unknown name, or dropped."""

    unreachable = True


class HostKeyRefused(HostError):
    """The host offered a key that known_hosts does not list (``changed`` False) or
    that differs from the one it lists (``changed`` True).

    ``fingerprint`` is the offered key's ``SHA256:...`` (None when it could not be
    seen), ``known_hosts`` the file consulted.
    """

    def __init__(
        self,
        message: str,
        *,
        host: str,
        address: str,
        port: int,
        fingerprint: str | None,
        changed: bool,
        known_hosts: Path,
    ) -> None:
        super().__init__(message, host=host, address=address, port=port)
        self.fingerprint = fingerprint
        self.changed = changed
        self.known_hosts = known_hosts


class AuthenticationFailed(HostError):
    """The host refused our key, or the key file cannot be used."""


class RemoteFileError(HostError):
    """An SFTP step failed on the host; ``path`` is the remote file concerned."""

    def __init__(self, message: str, *, host: str, address: str, port: int, path: str) -> None:
        super().__init__(message, host=host, address=address, port=port)
        self.path = path


def _where(address: str, port: int) -> str:
    # An IPv6 address needs brackets before a port can follow it.
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
