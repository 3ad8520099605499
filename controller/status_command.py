"""``hotconf status``: one row per host, from Redis when it answers, else over SFTP."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from controller.fleet_options import fleet_bus_settings
from controller.inventory import Host
from controller.inventory_command import inventory_option, limit_option, open_inventory
from controller.options import config_dir_option, json_option
from controller.push import PushOptions, make_target
from controller.status import FleetStatus, fleet_status
from controller.targets import HostTarget

if TYPE_CHECKING:
    from rich.table import Table

WATCH_INTERVAL_S = 2.0


@click.command()
@inventory_option
@limit_option
@config_dir_option
@click.option("--watch", is_flag=True, help="Refresh every 2 seconds until Ctrl-C.")
@click.option("--redis", "redis_url", default=None, metavar="URL",
              help="Redis to read reports from (default: the inventory's redis_url).")
@json_option
def status(inventory_path: Path | None, limit: str | None, config_dir: Path, watch: bool,
           redis_url: str | None, as_json: bool) -> None:
    """Show each host's served version, state, report age, drift and reachability.

    "serving" is the version the agent runs; "reported" the one its last report was
    about (they differ after a rejection). Drift is measured against the version of
    the files in --config-dir. Exit 0 when every host is reachable and serves that
    version, 1 otherwise.
    """
    chosen = open_inventory(inventory_path, limit)
    bus_redis, bus_key = fleet_bus_settings(chosen.hosts)
    options = PushOptions(config_dir=config_dir)

    def factory(host: Host) -> HostTarget:
        return make_target(host, options)

    async def take() -> FleetStatus:
        return await fleet_status(chosen.hosts, config_dir, redis_url=redis_url or bus_redis,
                                  bus_key=bus_key, target_factory=factory)

    if not watch:
        snapshot = asyncio.run(take())
        click.echo(json.dumps(snapshot.to_dict(), indent=2) if as_json else status_text(snapshot))
        sys.exit(0 if snapshot.converged else 1)

    try:
        asyncio.run(_watch(take, as_json=as_json))
    except KeyboardInterrupt:
        # Ctrl-C is how a watch ends: asyncio.run has already cancelled and closed all.
        return


async def _watch(take: Callable[[], Awaitable[FleetStatus]], *, as_json: bool) -> None:
    """Refresh until cancelled, on one event loop: a rich Live table on a terminal,
    else one JSON line or one text block per refresh."""
    if as_json or not sys.stdout.isatty():
        while True:
            snapshot = await take()
            click.echo(json.dumps(snapshot.to_dict()) if as_json else status_text(snapshot) + "\n")
            await asyncio.sleep(WATCH_INTERVAL_S)

    from rich.live import Live

    with Live(auto_refresh=False, redirect_stderr=False) as live:
        while True:
            snapshot = await take()
            live.update(status_table(snapshot), refresh=True)
            await asyncio.sleep(WATCH_INTERVAL_S)


def status_table(snapshot: FleetStatus) -> Table:
    """The rows of ``status_text`` as a rich table, for the terminal's live view."""
    from rich.table import Table

    verdict = "converged" if snapshot.converged else "[bold red]NOT converged[/]"
    table = Table(title=f"hotconf status: expected {snapshot.expected_version}, "
                        f"reports from {_source(snapshot)}",
                  caption=f"fleet {verdict}: {len(snapshot.hosts)} host(s); Ctrl-C to stop")
    for column in _HEADER:
        table.add_column(column)
    for row in _rows(snapshot):
        table.add_row(*row)
    return table


def status_text(snapshot: FleetStatus) -> str:
    """A table of hosts, then whether the fleet converged."""
    rows = _rows(snapshot)
    widths = [max(len(row[index]) for row in [_HEADER, *rows]) for index in range(8)]
    lines = [f"expected version {snapshot.expected_version}; reports from {_source(snapshot)}"]
    for row in [_HEADER, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:8], widths, strict=True)]
        lines.append(("  ".join(cells) + "  " + row[8]).rstrip())
    verdict = "converged" if snapshot.converged else "NOT converged"
    lines.append(f"fleet {verdict}: {len(snapshot.hosts)} host(s)")
    return "\n".join(lines)


_HEADER = ("host", "reachable", "serving", "reported", "state", "age", "drift", "from",
           "problem")


def _rows(snapshot: FleetStatus) -> list[tuple[str, ...]]:
    now = snapshot.taken_at
    rows: list[tuple[str, ...]] = []
    for host in snapshot.hosts:
        age = host.age(now)
        rows.append((
            host.name, "yes" if host.reachable else "NO", host.serving or "-",
            host.version or "-", host.state or "-", "-" if age is None else _age(age),
            "DRIFT" if host.drift else "-", host.source or "-", host.problem or "",
        ))
    return rows


def _source(snapshot: FleetStatus) -> str:
    return ("redis" if snapshot.redis else "status.json over SSH" +
            (" (redis not answering)" if snapshot.redis_configured else ""))


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"
