"""SSH connections to the fleet's hosts: host keys checked, key authentication only.

A host's key is checked against its known_hosts file (the inventory's ``known_hosts``,
else ``~/.ssh/known_hosts``) during the handshake, before we authenticate. A key that
the file does not list refuses the host, with the key's fingerprint and the command
that trusts it; a key that differs from the listed one refuses it louder. With
``accept_new_host_keys`` a host the file does not list at all is trusted, and its key
is recorded there once the connection stands, as OpenSSH's ``accept-new`` does; a
changed key is never accepted.

Authentication is by key only: the inventory's ``ansible_ssh_private_key_file``, or
when none is given SSH's usual keys and the running ssh-agent. No password, no
keyboard-interactive, no agent forwarding, no ~/.ssh/config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import socket
from pathlib import Path
from typing import Any

import asyncssh

from controller.errors import (
    AuthenticationFailed,
    ControllerError,
    HostKeyRefused,
    HostUnreachable,
)
from controller.inventory import Host

logger = logging.getLogger(__name__)

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
CONNECT_TIMEOUT_S = 10.0
# AES-GCM first: as secure as chacha20-poly1305, and asyncssh runs it as one
# AES-NI call per packet instead of building two cipher contexts per packet, which
# is most of a push's CPU on a small controller. The rest stay for older servers.
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
    "aes128-ctr", "aes192-ctr", "aes256-ctr",
)
# A host that vanishes without closing the TCP connection is noticed after about
# interval * count_max seconds instead of the kernel's many minutes.
KEEPALIVE_INTERVAL_S = 5.0
KEEPALIVE_COUNT_MAX = 3
SSH_DEFAULT_PORT = 22


async def connect(
    host: Host,
    *,
    accept_new_host_keys: bool = False,
    record_new_host_keys: bool = True,
    timeout: float = CONNECT_TIMEOUT_S,
) -> asyncssh.SSHClientConnection:
    """Open an SSH connection to ``host``, its key checked, authenticated by key.

    Raises ``HostKeyRefused`` (unknown or changed key, with fingerprint and the command
    to trust it), ``AuthenticationFailed`` (key refused or unusable) or
    ``HostUnreachable`` (refused, timed out, unknown name, dropped), each naming the
    host, its address and port and why.
    """
    known_hosts_file = known_hosts_path(host)
    known = _load_known_hosts(known_hosts_file)
    check = _HostKeyCheck(known, accept_new=accept_new_host_keys)
    key_options = _key_options(host)

    try:
        async with asyncio.timeout(timeout):
            connection = await asyncssh.connect(
                host.address,
                host.port,
                username=host.user,
                known_hosts=known,
                client_factory=lambda: check,
                config=[],
                password_auth=False,
                kbdint_auth=False,
                gss_auth=False,
                host_based_auth=False,
                agent_forwarding=False,
                keepalive_interval=KEEPALIVE_INTERVAL_S,
                keepalive_count_max=KEEPALIVE_COUNT_MAX,
                encryption_algs=PREFERRED_CIPHERS,
                **key_options,
            )
    except asyncssh.HostKeyNotVerifiable as exc:
        listed = check.listed if check.offered is not None else _listed(known, host)
        raise _key_refusal(host, known_hosts_file, check.offered, listed, str(exc)) from None
    except asyncssh.KeyExchangeFailed as exc:
        # asyncssh offers only the key types known_hosts lists for a known host, so a
        # host re-keyed with another type fails here rather than in the key check.
        if _listed(known, host):
            raise _key_refusal(host, known_hosts_file, None, True, exc.reason) from None
        raise _unreachable(host, f"key exchange failed: {exc.reason}") from exc
    except asyncssh.PermissionDenied as exc:
        raise _auth_refusal(host, exc.reason) from None
    except asyncssh.DisconnectError as exc:
        raise _unreachable(host, f"the server closed the connection: {exc.reason}") from exc
    except TimeoutError:
        raise _unreachable(host, f"no SSH answer within {timeout:g} s") from None
    except OSError as exc:
        raise _unreachable(host, _os_reason(exc)) from exc

    if check.accepted_new and record_new_host_keys:
        _record_host_key(host, known_hosts_file, connection.get_server_host_key())
    logger.debug("ssh connected host=%s address=%s port=%d", host.name, host.address, host.port)
    return connection


def known_hosts_path(host: Host) -> Path:
    """The known_hosts file consulted for ``host``."""
    return (host.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()


def host_pattern(address: str, port: int) -> str:
    """How known_hosts names a host: ``addr`` on port 22, ``[addr]:port`` otherwise."""
    return address if port == SSH_DEFAULT_PORT else f"[{address}]:{port}"


def trust_command(host: Host, known_hosts_file: Path) -> str:
    """The shell command that records ``host``'s current key in ``known_hosts_file``."""
    port = [] if host.port == SSH_DEFAULT_PORT else ["-p", str(host.port)]
    scan = shlex.join(["ssh-keyscan", *port, host.address])
    return f"{scan} >> {shlex.quote(str(known_hosts_file))}"


class _HostKeyCheck(asyncssh.SSHClient):
    """Sees every key asyncssh did not find trusted; accepts it only for accept-new.

    It also makes the connection acknowledge the server's segments at once; see
    ``_acknowledge_promptly``.
    """

    def __init__(self, known: asyncssh.SSHKnownHosts, *, accept_new: bool) -> None:
        self.known = known
        self.accept_new = accept_new
        self.offered: asyncssh.SSHKey | None = None
        self.listed = False
        self.accepted_new = False

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        _acknowledge_promptly(conn)

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        self.listed = _listed_keys(self.known, host, addr, port)
        self.accepted_new = self.accept_new and not self.listed
        return self.accepted_new


def _acknowledge_promptly(conn: asyncssh.SSHClientConnection) -> None:
    """Have the kernel ACK each segment from the server at once, not up to 40 ms later.

    Until a session starts, sshd leaves Nagle's algorithm on: a small reply (the
    channel open confirmation) waits for the ACK of the segment before it, which
    Linux delays, so every SFTP session start paid about 45 ms. TCP_QUICKACK is not
    sticky, so it is set again whenever data arrives.
    """
    sock = conn.get_extra_info("socket")
    if sock is None or not hasattr(socket, "TCP_QUICKACK"):
        return
    receive = conn.data_received

    def data_received(data: bytes, datatype: Any = None) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        receive(data, datatype)

    # XXX: wraps asyncssh's protocol method on this one connection object, as asyncssh
    # offers no receive hook; if it stops calling data_received, ACKs are merely slower.
    conn.data_received = data_received  # type: ignore[method-assign]


def _listed_keys(known: asyncssh.SSHKnownHosts, host: str, addr: str, port: int) -> bool:
    match_port = None if port == SSH_DEFAULT_PORT else port
    trusted_keys, trusted_cas, *_ = asyncssh.match_known_hosts(known, host, addr, match_port)
    return bool(trusted_keys or trusted_cas)


def _listed(known: asyncssh.SSHKnownHosts, host: Host) -> bool:
    return _listed_keys(known, host.address, host.address, host.port)


def _load_known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    try:
        text = path.read_text()
    except FileNotFoundError:
        # No file trusts no host; an object, because an empty value makes asyncssh
        # fall back to ~/.ssh/known_hosts behind our back.
        text = ""
    except OSError as exc:
        raise ControllerError(
            f"known_hosts file {path} cannot be read: {exc.strerror}; "
            "fix its permissions or point the inventory's known_hosts elsewhere"
        ) from exc
    try:
        return asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.KeyImportError) as exc:
        raise ControllerError(
            f"known_hosts file {path} cannot be parsed: {exc}; "
            "fix or remove the bad line (ssh-keygen -R HOST -f FILE removes a host)"
        ) from exc


def _key_options(host: Host) -> dict[str, Any]:
    if host.key_file is None:
        # SSH's usual keys (~/.ssh/id_*) and the ssh-agent, if one runs.
        return {}
    path = host.key_file.expanduser()
    try:
        key = asyncssh.read_private_key(str(path))
    except OSError as exc:
        raise _auth_refusal(host, f"key file {path} cannot be read: {exc.strerror}") from exc
    except asyncssh.KeyImportError as exc:
        hint = ("it is protected by a passphrase; give a key without one, or load it into "
                "ssh-agent and leave ansible_ssh_private_key_file unset"
                if "passphrase" in str(exc).lower() else f"it is not a usable private key ({exc})")
        raise _auth_refusal(host, f"key file {path}: {hint}") from exc
    return {"client_keys": [key], "agent_path": None}


def _key_refusal(
    host: Host, known_hosts_file: Path, key: asyncssh.SSHKey | None, listed: bool, reason: str
) -> HostKeyRefused:
    pattern = host_pattern(host.address, host.port)
    fingerprint = key.get_fingerprint("sha256") if key is not None else None
    offered = (f"it offers {key.get_algorithm()} key {fingerprint}" if key is not None
               else f"its key could not be checked ({reason})")
    if listed:
        message = (
            f"HOST KEY CHANGED: {offered}, which is not the key {known_hosts_file} lists for "
            f"{pattern}. Someone may be intercepting the connection, or the host was "
            "reinstalled. Only if you know why it changed, replace the old key: "
            f"ssh-keygen -R {shlex.quote(pattern)} -f {shlex.quote(str(known_hosts_file))} && "
            f"{trust_command(host, known_hosts_file)} (--accept-new-host-keys never replaces "
            "a changed key)"
        )
    else:
        message = (
            f"unknown host key: {offered}, and {known_hosts_file} has no key for {pattern}. "
            "Compare that fingerprint with the host's own (ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub on it), then trust it: "
            f"{trust_command(host, known_hosts_file)} (or push with --accept-new-host-keys)"
        )
    return HostKeyRefused(
        message,
        host=host.name,
        address=host.address,
        port=host.port,
        fingerprint=fingerprint,
        changed=listed,
        known_hosts=known_hosts_file,
    )


def _record_host_key(host: Host, known_hosts_file: Path, key: asyncssh.SSHKey | None) -> None:
    if key is None:
        return
    key_type, key_blob = key.export_public_key("openssh").decode().split()[:2]
    line = f"{host_pattern(host.address, host.port)} {key_type} {key_blob}\n"

    try:
        known_hosts_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(known_hosts_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            # A file whose last line lacks its newline would swallow ours into that line.
            if os.fstat(fd).st_size and not _ends_with_newline(known_hosts_file):
                line = "\n" + line
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        # The key was accepted for this run; only remembering it failed.
        logger.warning(
            "new host key trusted but not recorded host=%s fingerprint=%s known_hosts=%s "
            "reason=%s", host.name, key.get_fingerprint("sha256"), known_hosts_file,
            exc.strerror,
        )
        return
    logger.warning(
        "trusted new host key host=%s address=%s port=%d fingerprint=%s known_hosts=%s",
        host.name, host.address, host.port, key.get_fingerprint("sha256"), known_hosts_file,
    )


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as existing:
        existing.seek(-1, os.SEEK_END)
        return existing.read(1) == b"\n"


def _auth_refusal(host: Host, reason: str) -> AuthenticationFailed:
    key = host.key_file or "SSH's usual keys (~/.ssh/id_*, ssh-agent)"
    return AuthenticationFailed(
        f"authentication as {host.user} failed: {reason}. hotconf logs in by key only "
        f"(here {key}); add the public key to ~{host.user}/.ssh/authorized_keys on the host, "
        "or set ansible_user / ansible_ssh_private_key_file in the inventory",
        host=host.name,
        address=host.address,
        port=host.port,
    )


def _unreachable(host: Host, reason: str) -> HostUnreachable:
    return HostUnreachable(
        f"unreachable: {reason}", host=host.name, address=host.address, port=host.port
    )


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is sshd running, and on this port?)"
    if exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
