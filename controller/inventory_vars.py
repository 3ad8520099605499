"""The inventory variables hotconf understands, and how each is checked.

An Ansible inventory carries many variables; hotconf reads a few and ignores the rest,
so an existing inventory works as it is. Each variable it reads is checked where it is
written, so an error points at that line:

==============================  ===========  ===========================================
variable                        record field meaning
==============================  ===========  ===========================================
ansible_host                    address      name or IP address to connect to
ansible_port                    port         SSH port, 1-65535 (default 22)
ansible_user                    user         login name (default: the current user)
ansible_ssh_private_key_file    key_file     private key; must be readable
connection / ansible_connection connection   ``ssh`` (default) or ``local`` (this machine)
config_dir                      config_dir   the managed directory (default /etc/autobot)
redis_url                       redis_url    the Redis bus, ``redis://``, ``rediss://``,
                                             ``unix://``
known_hosts                     known_hosts  known_hosts file (default ~/.ssh/known_hosts)
bus_key_file                    bus_key_file shared HMAC key of the Redis bus
==============================  ===========  ===========================================

Relative paths are relative to the inventory file's directory, so an inventory and its
keys can move together. Passwords (``ansible_password``, ``ansible_ssh_pass`` and the
like) are refused: hotconf authenticates with keys only. A variable hotconf does not
know is ignored, unless it looks like a misspelling of one it does.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from controller.errors import InventoryError
from hotconf.secrets import mask_url_password

Connection = Literal["ssh", "local"]
CONNECTIONS: tuple[Connection, ...] = ("ssh", "local")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

# Inventory variable name -> the record field it sets.  The ansible_ssh_* forms are
# Ansible's older spellings, still common in long-lived inventories.
FIELD_OF_VARIABLE: dict[str, str] = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "key_file",
    "ansible_private_key_file": "key_file",
    "ansible_connection": "connection",
    "connection": "connection",
    "config_dir": "config_dir",
    "redis_url": "redis_url",
    "known_hosts": "known_hosts",
    "bus_key_file": "bus_key_file",
}

REFUSED_VARIABLES = frozenset({
    "ansible_password",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
    "ansible_su_pass",
})

# Ansible's own variables that hotconf has no use for.  They are listed so that the
# misspelling check below never mistakes one of them for a typo.
IGNORED_ANSIBLE_VARIABLES = frozenset({
    "ansible_become",
    "ansible_become_exe",
    "ansible_become_flags",
    "ansible_become_method",
    "ansible_become_user",
    "ansible_python_interpreter",
    "ansible_shell_executable",
    "ansible_shell_type",
    "ansible_ssh_args",
    "ansible_ssh_common_args",
    "ansible_ssh_executable",
    "ansible_ssh_extra_args",
    "ansible_ssh_pipelining",
    "ansible_pipelining",
    "ansible_scp_extra_args",
    "ansible_sftp_extra_args",
    "ansible_host_key_checking",
    "ansible_ssh_host_key_checking",
    "ansible_ssh_retries",
    "ansible_ssh_timeout",
    "ansible_timeout",
})


@dataclass(frozen=True, slots=True)
class Located:
    """A checked variable value and the 1-based line it was written on."""

    value: object
    line: int
    variable: str


class VariableChecker:
    """Checks variables for one inventory file, naming that file in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base_dir = path.parent

    def check(self, variable: str, value: object, line: int) -> tuple[str, Located] | None:
        """Return ``(field, Located)`` for a variable hotconf reads, None for one it ignores.

        Raises InventoryError for a refused password, a likely misspelling or a bad value.
        """
        if variable in REFUSED_VARIABLES:
            raise self.error(
                line,
                f"{variable}: passwords are refused; hotconf authenticates with keys only. "
                "Remove it and set ansible_ssh_private_key_file (or use ssh-agent)",
            )

        field_name = FIELD_OF_VARIABLE.get(variable)
        if field_name is None:
            self._refuse_misspelling(variable, line)
            return None

        checked = _CHECKS[field_name](self, variable, value, line)
        return field_name, Located(checked, line, variable)

    def error(self, line: int | None, message: str) -> InventoryError:
        return InventoryError(message, path=self.path, line=line)

    def resolve_path(self, raw: str) -> Path:
        """Expand ``~`` and make a relative path relative to the inventory's directory."""
        expanded = Path(raw).expanduser()
        return expanded if expanded.is_absolute() else self.base_dir / expanded

    def _refuse_misspelling(self, variable: str, line: int) -> None:
        if variable in IGNORED_ANSIBLE_VARIABLES:
            return
        close = difflib.get_close_matches(variable, FIELD_OF_VARIABLE, n=1, cutoff=0.8)
        if close:
            raise self.error(
                line,
                f"unknown variable {variable!r}; did you mean {close[0]!r}? "
                "Fix the name (hotconf ignores variables it does not use, "
                "but this one looks like a misspelling)",
            )

    def _text(self, variable: str, value: object, line: int) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(line, f"{variable}: expected text, got {_describe(value)}")
        text = str(value).strip()
        if not text:
            raise self.error(line, f"{variable}: is empty; give a value or remove the line")
        return text

    def _address(self, variable: str, value: object, line: int) -> str:
        return self._text(variable, value, line)

    def _user(self, variable: str, value: object, line: int) -> str:
        return self._text(variable, value, line)

    def _port(self, variable: str, value: object, line: int) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(line, f"{variable}: expected a port number, got {_describe(value)}")
        if not 1 <= value <= 65535:
            raise self.error(
                line, f"{variable}: {value} is out of range; a TCP port is 1 to 65535"
            )
        return value

    def _connection(self, variable: str, value: object, line: int) -> Connection:
        text = self._text(variable, value, line)

        # Ansible's "smart" and "paramiko" both mean SSH to hotconf.
        if variable == "ansible_connection" and text in ("smart", "paramiko", "paramiko_ssh"):
            return "ssh"
        for connection in CONNECTIONS:
            if text == connection:
                return connection
        raise self.error(
            line, f"{variable}: {text!r} is not a connection hotconf knows; use ssh or local"
        )

    def _config_dir(self, variable: str, value: object, line: int) -> str:
        # Kept as written: whether a relative path is allowed depends on the connection,
        # which may be set further down the group tree.
        return self._text(variable, value, line)

    def _redis_url(self, variable: str, value: object, line: int) -> str:
        text = self._text(variable, value, line)
        if not text.startswith(REDIS_SCHEMES):
            raise self.error(
                line,
                f"{variable}: expected a URL starting with {', '.join(REDIS_SCHEMES)}, "
                f"got {mask_url(text)!r}",
            )
        return text

    def _readable_file(self, variable: str, value: object, line: int) -> Path:
        path = self.resolve_path(self._text(variable, value, line))
        if not path.is_file():
            raise self.error(line, f"{variable}: {path} does not exist or is not a file")
        if not os.access(path, os.R_OK):
            raise self.error(
                line, f"{variable}: {path} is not readable by this user; check its permissions"
            )
        return path

    def _known_hosts(self, variable: str, value: object, line: int) -> Path:
        # A known_hosts file may not exist yet: trusting a first key creates it.
        path = self.resolve_path(self._text(variable, value, line))
        if path.exists() and not path.is_file():
            raise self.error(line, f"{variable}: {path} exists but is not a file")
        return path


_Check = Callable[[VariableChecker, str, object, int], object]

_CHECKS: dict[str, _Check] = {
    "address": VariableChecker._address,
    "port": VariableChecker._port,
    "user": VariableChecker._user,
    "key_file": VariableChecker._readable_file,
    "connection": VariableChecker._connection,
    "config_dir": VariableChecker._config_dir,
    "redis_url": VariableChecker._redis_url,
    "known_hosts": VariableChecker._known_hosts,
    "bus_key_file": VariableChecker._readable_file,
}


def config_dir_path(located: Located, connection: Connection, checker: VariableChecker) -> str:
    """The config_dir of a resolved host: absolute for SSH, inventory-relative when local."""
    raw = str(located.value)
    if PurePosixPath(raw).is_absolute():
        return raw
    if connection == "local":
        return str(checker.resolve_path(raw).absolute())
    raise checker.error(
        located.line,
        f"{located.variable}: {raw!r} is relative; an ssh host needs an absolute path "
        "(a relative one would depend on the login's home directory)",
    )


def mask_url(url: str) -> str:
    """``redis://:secret@host:6379/0`` -> ``redis://:********@host:6379/0``."""
    return mask_url_password(url)


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"
