"""The fleet as hotconf sees it: an Ansible YAML inventory resolved into host records.

``load_inventory(path)`` reads the file (see ``controller.inventory_file`` for its
shape and ``controller.inventory_vars`` for the variables), applies Ansible's variable
precedence and returns an ``Inventory`` of frozen ``Host`` records::

    inventory = load_inventory(Path("inventory/fleet.yaml"))
    for host in inventory.select("vms:!vm3-redis"):
        print(host.name, host.address, host.port, host.config_dir)

Precedence, lowest first, as Ansible does it: the variables of ``all``, then of each
group by depth (a parent before its children; groups of equal depth by name), then the
host's own.  Where an inventory is looked for when none is named: see
``default_inventory_path``.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from controller.errors import InventoryError
from controller.inventory_file import ALL, RawInventory, read_inventory_file
from controller.inventory_vars import Connection, Located, config_dir_path, mask_url

logger = logging.getLogger(__name__)

DEFAULT_PORT = 22
DEFAULT_CONFIG_DIR = "/etc/autobot"
_DEFAULT_CONFIG_DIR_PATH = PurePosixPath(DEFAULT_CONFIG_DIR)
UNGROUPED = "ungrouped"
INVENTORY_ENV = "HOTCONF_INVENTORY"
CWD_INVENTORY = Path("inventory/fleet.yaml")
SYSTEM_INVENTORY = Path("/etc/hotconf/inventory.yaml")


@dataclass(frozen=True, slots=True)
class Host:
    """One machine of the fleet, every variable resolved.

    ``config_dir`` is a POSIX path on that machine.  ``known_hosts`` None means the
    user's ``~/.ssh/known_hosts``; ``key_file`` None means SSH's usual keys and agent.
    ``groups`` lists every group the host belongs to, parents first, without ``all``.
    """

    name: str
    address: str
    port: int = DEFAULT_PORT
    user: str = field(default_factory=lambda: _current_user())
    key_file: Path | None = None
    config_dir: PurePosixPath = _DEFAULT_CONFIG_DIR_PATH
    connection: Connection = "ssh"
    redis_url: str | None = None
    known_hosts: Path | None = None
    bus_key_file: Path | None = None
    groups: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.connection == "local"

    def describe(self) -> dict[str, Any]:
        """The record as JSON-ready values; a password inside redis_url is masked."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "key_file": _text_or_none(self.key_file),
            "config_dir": str(self.config_dir),
            "connection": self.connection,
            "redis_url": mask_url(self.redis_url) if self.redis_url else None,
            "known_hosts": _text_or_none(self.known_hosts),
            "bus_key_file": _text_or_none(self.bus_key_file),
            "groups": list(self.groups),
        }


@dataclass(frozen=True, slots=True)
class Inventory:
    """The hosts of one inventory file, in the order the file first names them.

    ``groups`` maps every group (``all`` and ``ungrouped`` included) to the names of
    all its hosts, those of its descendants included.
    """

    path: Path
    hosts: tuple[Host, ...]
    groups: Mapping[str, tuple[str, ...]] = field(compare=False)

    def host(self, name: str) -> Host:
        """The host called ``name``; KeyError when there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def select(self, pattern: str | None) -> tuple[Host, ...]:
        """The hosts a ``--limit`` pattern selects; see ``controller.host_patterns``."""
        from controller.host_patterns import select_hosts

        return select_hosts(self, pattern)


def load_inventory(path: Path) -> Inventory:
    """Read the inventory at ``path`` and resolve every host.

    Raises InventoryError, naming the file and line, for a missing or unreadable file,
    bad YAML, an unknown key, a duplicate host, a bad value, a refused password, an
    unreadable key file or a group cycle.
    """
    raw = read_inventory_file(path)
    inventory = resolve_inventory(raw)
    logger.debug(
        "inventory loaded path=%s hosts=%d groups=%d",
        path, len(inventory.hosts), len(inventory.groups),
    )
    return inventory


def resolve_inventory(raw: RawInventory) -> Inventory:
    """Apply group membership and variable precedence to a parsed inventory."""
    depth = _group_depths(raw)
    members = _group_members(raw)

    # Each host's groups: every group whose subtree lists it.  A host in no group but
    # `all` is in `ungrouped`, as Ansible has it.
    groups_of: dict[str, list[str]] = {name: [] for name in raw.hosts}
    for group, host_names in members.items():
        for host_name in host_names:
            groups_of[host_name].append(group)
    ungrouped = [name for name, groups in groups_of.items() if set(groups) == {ALL}]
    if ungrouped:
        members[UNGROUPED] = members.get(UNGROUPED, []) + ungrouped
        depth.setdefault(UNGROUPED, 1)
        for name in ungrouped:
            groups_of[name].append(UNGROUPED)

    current_user = _current_user()
    hosts = []
    for name, raw_host in raw.hosts.items():
        ordered = sorted(groups_of[name], key=lambda group: (depth[group], group))
        merged: dict[str, Located] = {}
        for group in ordered:
            if group in raw.groups:
                merged.update(raw.groups[group].variables)
        merged.update(raw_host.variables)
        groups = tuple(group for group in ordered if group != ALL)
        hosts.append(_host_record(raw, name, merged, groups, current_user))

    ordered_members = {}
    for group, names in members.items():
        chosen = set(names)
        ordered_members[group] = tuple(host for host in raw.hosts if host in chosen)
    return Inventory(raw.path, tuple(hosts), MappingProxyType(ordered_members))


def default_inventory_path(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Path:
    """Where to find the inventory when ``-i`` is not given.

    In order: ``$HOTCONF_INVENTORY``; ``inventory/fleet.yaml`` under the current
    directory; ``/etc/hotconf/inventory.yaml``.  Raises InventoryError naming all
    three when none exists.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd

    from_environment = environ.get(INVENTORY_ENV, "").strip()
    if from_environment:
        return Path(from_environment).expanduser()
    for candidate in (cwd / CWD_INVENTORY, SYSTEM_INVENTORY):
        if candidate.is_file():
            return candidate
    raise InventoryError(
        f"no inventory found: pass -i FILE, set {INVENTORY_ENV}, or create "
        f"{CWD_INVENTORY} here or {SYSTEM_INVENTORY}"
    )


def _host_record(
    raw: RawInventory,
    name: str,
    merged: Mapping[str, Located],
    groups: tuple[str, ...],
    current_user: str,
) -> Host:
    def value(field_name: str) -> Any:
        located = merged.get(field_name)
        return None if located is None else located.value

    connection: Connection = value("connection") or "ssh"
    config_dir = DEFAULT_CONFIG_DIR
    if "config_dir" in merged:
        config_dir = config_dir_path(merged["config_dir"], connection, raw.checker)

    return Host(
        name=name,
        address=value("address") or name,
        port=value("port") or DEFAULT_PORT,
        user=value("user") or current_user,
        key_file=value("key_file"),
        config_dir=PurePosixPath(config_dir),
        connection=connection,
        redis_url=value("redis_url"),
        known_hosts=value("known_hosts"),
        bus_key_file=value("bus_key_file"),
        groups=groups,
    )


def _group_depths(raw: RawInventory) -> dict[str, int]:
    """Each group's longest distance from `all`; raises InventoryError on a cycle."""
    finished: list[str] = []  # post-order: every group after all its descendants
    path: list[str] = []

    def visit(group: str) -> None:
        path.append(group)
        for child, line in raw.groups[group].children.items():
            if child in path:
                cycle = " -> ".join([*path[path.index(child):], child])
                raise InventoryError(
                    f"group cycle: {cycle}; a group cannot contain itself, "
                    f"remove {child!r} from the children of {group!r}",
                    path=raw.path, line=line,
                )
            if child not in finished:
                visit(child)
        path.pop()
        finished.append(group)

    visit(ALL)

    # Reversed post-order puts every parent before its children, so one pass settles
    # the longest distance.
    depth = dict.fromkeys(finished, 0)
    for group in reversed(finished):
        for child in raw.groups[group].children:
            depth[child] = max(depth[child], depth[group] + 1)
    return depth


def _group_members(raw: RawInventory) -> dict[str, list[str]]:
    """Each group's hosts, its descendants' included."""
    members: dict[str, list[str]] = {}

    def collect(group: str) -> list[str]:
        if group not in members:
            found = list(raw.groups[group].hosts)
            for child in raw.groups[group].children:
                found.extend(host for host in collect(child) if host not in found)
            members[group] = found
        return members[group]

    collect(ALL)
    members[ALL] = list(raw.hosts)
    return members


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _text_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)
