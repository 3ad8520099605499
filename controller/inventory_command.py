"""``hotconf inventory``: what hotconf makes of an inventory, every variable resolved,
and with ``--check`` whether each host can be worked with (``controller.inventory_check``).

Also home of the ``-i`` and ``--limit`` options, so every command that works on the
fleet finds its inventory the same way.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from controller.inventory import (
    CWD_INVENTORY,
    INVENTORY_ENV,
    SYSTEM_INVENTORY,
    Host,
    Inventory,
    default_inventory_path,
    load_inventory,
)

if TYPE_CHECKING:
    from controller.inventory_check import HostCheck

F = TypeVar("F", bound=Callable[..., Any])

INVENTORY_HELP = (
    f"Inventory file (Ansible YAML). Default: ${INVENTORY_ENV}, else {CWD_INVENTORY} "
    f"under the current directory, else {SYSTEM_INVENTORY}."
)
LIMIT_HELP = (
    "Only these hosts: host or group names, globs with *, ':' or ',' between terms, "
    "&GROUP to intersect, !NAME to exclude (e.g. 'vms:!vm3-redis')."
)

# Fields shown as columns; the others are listed once when every host shares them.
_SHARED_FIELDS = ("key_file", "redis_url", "known_hosts", "bus_key_file")
_UNSET_MEANS = {
    "key_file": "SSH's usual keys and ssh-agent",
    "redis_url": "none: reports are read over SFTP",
    "known_hosts": "~/.ssh/known_hosts",
    "bus_key_file": "none: bus messages are not signed",
}


def inventory_option(function: F) -> F:
    """``-i/--inventory FILE``; resolve it with ``open_inventory``."""
    return click.option(
        "-i", "--inventory", "inventory_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=INVENTORY_HELP,
    )(function)


def limit_option(function: F) -> F:
    """``-l/--limit PATTERN``, Ansible's host patterns."""
    return click.option("-l", "--limit", default=None, metavar="PATTERN",
                        help=LIMIT_HELP)(function)


def open_inventory(inventory_path: Path | None, limit: str | None = None) -> Inventory:
    """Load the inventory named by ``-i`` (or the default one) and apply ``--limit``.

    The returned inventory holds only the selected hosts; its groups are unchanged.
    Raises InventoryError.
    """
    path = inventory_path if inventory_path is not None else default_inventory_path()
    inventory = load_inventory(path)
    if limit is None:
        return inventory
    return Inventory(inventory.path, inventory.select(limit), inventory.groups)


@click.command()
@inventory_option
@limit_option
@click.option("--check", is_flag=True,
              help="Connect to each host as push would and report reachability, host key "
                   "and the remote config dir. Changes nothing.")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
              help="With --check: seconds allowed to each host.")
@click.option("--forks", type=click.IntRange(1, 500), default=20, show_default=True,
              help="With --check: hosts checked at once.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def inventory(
    inventory_path: Path | None,
    limit: str | None,
    check: bool,
    timeout: float,
    forks: int,
    as_json: bool,
) -> None:
    """List the fleet's hosts with their resolved variables.

    Reads the inventory as push and status would, so an error here (with its file and
    line) is one they would meet. With --check, also connects to each host. Exit 0; 1
    when --check finds a host it cannot work with; 2 for a bad inventory or --limit.
    """
    chosen = open_inventory(inventory_path, limit)
    if not check:
        if as_json:
            body = {"inventory": str(chosen.path),
                    "hosts": [host.describe() for host in chosen.hosts]}
            click.echo(json.dumps(body, indent=2))
        else:
            click.echo(inventory_text(chosen))
        return

    from controller.inventory_check import check_hosts

    results = asyncio.run(check_hosts(chosen.hosts, forks=forks, timeout=timeout))
    if as_json:
        body = {"inventory": str(chosen.path),
                "hosts": [{**host.describe(), "check": result.to_dict()}
                          for host, result in zip(chosen.hosts, results, strict=True)]}
        click.echo(json.dumps(body, indent=2))
    else:
        click.echo(check_text(chosen, results))
    sys.exit(0 if all(result.ok for result in results) else 1)


def check_text(chosen: Inventory, results: Sequence[HostCheck]) -> str:
    """One row per host, then each problem in full."""
    columns = ["host", "reachable", "host_key", "config_dir", "version"]
    rows = [[
        result.name,
        "yes" if result.reachable else "no",
        result.host_key,
        f"{result.config_dir} ({_dir_summary(result)})",
        result.version or "-",
    ] for result in results]
    lines = [f"{chosen.path}: {_count(len(results), 'host')} checked"]
    lines.extend(_table(columns, rows))
    problems = [result for result in results if result.problem]
    if problems:
        lines.append("problems:")
        lines.extend(f"  {result.name}: {result.problem}" for result in problems)
    healthy = sum(result.ok for result in results)
    lines.append(f"{healthy} of {_count(len(results), 'host')} ready for push")
    return "\n".join(lines)


def _dir_summary(result: HostCheck) -> str:
    if result.config_dir_state != "ok":
        return result.config_dir_state
    return ", ".join(result.files) if result.files else "empty"


def inventory_text(chosen: Inventory) -> str:
    """A table of hosts, then the settings every host shares."""
    described = [host.describe() for host in chosen.hosts]
    shared = {
        name: described[0][name]
        for name in _SHARED_FIELDS
        if described and all(entry[name] == described[0][name] for entry in described)
    }
    columns = ["host", "connection", "login", "config_dir", "groups"]
    columns += [name for name in _SHARED_FIELDS if name not in shared]

    rows = [[_cell(host, entry, column) for column in columns]
            for host, entry in zip(chosen.hosts, described, strict=True)]
    lines = [f"{chosen.path}: {_count(len(chosen.hosts), 'host')}"]
    lines.extend(_table(columns, rows))
    if shared:
        lines.append("every host:")
        lines.extend(
            f"  {name:<13} {value if value is not None else '(' + _UNSET_MEANS[name] + ')'}"
            for name, value in shared.items()
        )
    return "\n".join(lines)


def _cell(host: Host, entry: dict[str, Any], column: str) -> str:
    if column == "host":
        return host.name
    if column == "login":
        return "-" if host.is_local else f"{host.user}@{_bracketed(host.address)}:{host.port}"
    if column == "groups":
        return ",".join(host.groups) or "-"
    value = entry[column]
    return "-" if value is None else str(value)


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(text) for text in [column, *(row[index] for row in rows)])
              for index, column in enumerate(columns)]
    lines = ["  ".join(text.ljust(width) for text, width in zip(columns, widths, strict=True))]
    lines.extend(
        "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    return [line.rstrip() for line in lines]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
