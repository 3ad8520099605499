"""``hotconf inventory --check``: can hotconf work with each host, and where does it stand.

For each host, in parallel (at most ``forks`` at once), without changing anything:

- reachability: the SSH connection (``controller.connection.connect``), host key
  checked against known_hosts and key authentication, exactly as push connects;
- the host key: ``ok``, ``unknown`` or ``changed``, with the offered fingerprint;
- the config dir over SFTP: present and a directory, which managed files it holds and
  their content version.

A ``connection: local`` host is checked on this disk.  Nothing is written anywhere, not
even a new host key: ``--check`` never trusts on first use.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from controller.errors import AuthenticationFailed, HostError, HostKeyRefused
from controller.inventory import Host
from hotconf.version import MANAGED_FILES, content_version, read_managed_files

HostKeyState = Literal["ok", "unknown", "changed", "local", "not checked"]
DirState = Literal["ok", "missing", "not a directory", "unreadable", "not checked"]

DEFAULT_FORKS = 20
DEFAULT_TIMEOUT_S = 10.0


@dataclass(slots=True)
class HostCheck:
    """What ``--check`` found on one host; ``problem`` says what to do when not ok."""

    name: str
    connection: str
    config_dir: str
    reachable: bool = False
    host_key: HostKeyState = "not checked"
    fingerprint: str | None = None
    authenticated: bool = False
    config_dir_state: DirState = "not checked"
    files: list[str] = field(default_factory=list)
    version: str | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.reachable and self.authenticated and self.config_dir_state == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.name,
            "ok": self.ok,
            "connection": self.connection,
            "reachable": self.reachable,
            "host_key": self.host_key,
            "fingerprint": self.fingerprint,
            "authenticated": self.authenticated,
            "config_dir": self.config_dir,
            "config_dir_state": self.config_dir_state,
            "files": self.files,
            "version": self.version,
            "problem": self.problem or None,
        }


async def check_hosts(
    hosts: Sequence[Host], *, forks: int = DEFAULT_FORKS, timeout: float = DEFAULT_TIMEOUT_S
) -> list[HostCheck]:
    """Check every host, at most ``forks`` at once; one result per host, in order.

    Never raises for one bad host: its result says what went wrong.
    """
    limiter = asyncio.Semaphore(max(forks, 1))

    async def one(host: Host) -> HostCheck:
        async with limiter:
            if host.is_local:
                return await asyncio.to_thread(_check_local, host)
            return await _check_ssh(host, timeout)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(host)) for host in hosts]
    return [task.result() for task in tasks]


def _check_local(host: Host) -> HostCheck:
    result = HostCheck(host.name, host.connection, str(host.config_dir),
                       reachable=True, host_key="local", authenticated=True)
    directory = Path(str(host.config_dir))
    if not directory.exists():
        return _missing_dir(result)
    if not directory.is_dir():
        return _not_a_dir(result)

    try:
        files = read_managed_files(directory)
    except OSError as exc:
        result.config_dir_state = "unreadable"
        result.problem = f"cannot read {exc.filename}: {exc.strerror}; check its permissions"
        return result
    return _with_files(result, files)


async def _check_ssh(host: Host, timeout: float) -> HostCheck:
    # Imported here: asyncssh is loaded only when --check asks for it.
    import asyncssh

    from controller.connection import connect

    result = HostCheck(host.name, host.connection, str(host.config_dir))
    try:
        connection = await connect(host, accept_new_host_keys=False, timeout=timeout)
    except HostKeyRefused as exc:
        result.reachable = True
        result.host_key = "changed" if exc.changed else "unknown"
        result.fingerprint = exc.fingerprint
        result.problem = str(exc)
        return result
    except AuthenticationFailed as exc:
        result.reachable = True
        result.host_key = "ok"
        result.problem = str(exc)
        return result
    except HostError as exc:
        result.problem = str(exc)
        return result

    result.reachable = result.authenticated = True
    result.host_key = "ok"
    try:
        async with asyncio.timeout(timeout), connection.start_sftp_client() as sftp:
            await _check_remote_dir(sftp, result)
    except (asyncssh.Error, OSError, TimeoutError) as exc:
        result.config_dir_state = "unreadable"
        result.problem = f"SFTP on {host.name} failed: {exc}; is the sftp subsystem enabled?"
    finally:
        connection.close()
        await connection.wait_closed()
    return result


async def _check_remote_dir(sftp: Any, result: HostCheck) -> None:
    import asyncssh

    try:
        attributes = await sftp.stat(result.config_dir)
    except asyncssh.SFTPNoSuchFile:
        _missing_dir(result)
        return
    except asyncssh.SFTPPermissionDenied:
        result.config_dir_state = "unreadable"
        result.problem = f"{result.config_dir}: permission denied for this login"
        return
    if attributes.permissions is None or not stat.S_ISDIR(attributes.permissions):
        _not_a_dir(result)
        return

    files: dict[str, bytes] = {}
    for name in MANAGED_FILES:
        path = f"{result.config_dir.rstrip('/')}/{name}"
        try:
            async with sftp.open(path, "rb") as remote:
                files[name] = await remote.read()
        except asyncssh.SFTPNoSuchFile:
            continue
        except asyncssh.SFTPPermissionDenied:
            result.config_dir_state = "unreadable"
            result.problem = f"{path}: permission denied for this login"
            return
    _with_files(result, files)


def _with_files(result: HostCheck, files: dict[str, bytes]) -> HostCheck:
    result.config_dir_state = "ok"
    result.files = sorted(files)
    result.version = content_version(files) if files else None
    return result


def _missing_dir(result: HostCheck) -> HostCheck:
    result.config_dir_state = "missing"
    result.problem = (f"{result.config_dir} does not exist; create it (owned by the push "
                      "login) or fix config_dir in the inventory")
    return result


def _not_a_dir(result: HostCheck) -> HostCheck:
    result.config_dir_state = "not a directory"
    result.problem = f"{result.config_dir} is not a directory; fix config_dir in the inventory"
    return result
