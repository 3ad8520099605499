"""``hotconf push``: the command line over ``controller.push``.

On a terminal a live table (rich) shows each host's phase; otherwise one plain line
per host as it finishes, then a recap line as Ansible prints one.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from controller.fleet_options import fleet_bus_settings
from controller.inventory_command import inventory_option, limit_option, open_inventory
from controller.options import config_dir_option, json_option
from controller.push import LocalConfigRefused, ProgressCallback, PushOptions, PushRun
from controller.push_results import HostResult, PushResult
from controller.render import report_text
from controller.rollout import Share, ShareType

EXIT_FAILED_HOSTS = 1


@click.command()
@inventory_option
@limit_option
@config_dir_option
@click.option("--check", is_flag=True, help="Change nothing anywhere; say what would change.")
@click.option("--diff", is_flag=True, help="Print a unified diff per host, secrets masked.")
@click.option("--canary", type=click.IntRange(min=0), default=0, show_default=True,
              help="Push to the first N hosts first; the rest start only once they applied.")
@click.option("--batch", type=ShareType(), default=None,
              help="Hosts per batch after the canary: N or N% (default: all at once).")
@click.option("--max-fail", type=ShareType(), default=None,
              help="Start no more hosts once more than N (or N%) failed (default: no limit).")
@click.option("--forks", type=click.IntRange(min=1), default=20, show_default=True,
              help="Hosts worked on at once.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for each agent to report the new version.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for the agents' reports.")
@click.option("--force", is_flag=True,
              help="Push despite CRITICAL findings (never a file that does not parse).")
@click.option("--accept-new-host-keys", is_flag=True,
              help="Trust and record host keys not yet known (a changed key is still refused).")
@click.option("--redis", "redis_url", default=None, metavar="URL",
              help="Redis for the fast path (default: the inventory's redis_url).")
@json_option
def push(inventory_path: Path | None, limit: str | None, config_dir: Path, check: bool,
         diff: bool, canary: int, batch: Share | None, max_fail: Share | None, forks: int,
         wait: bool, timeout: float, force: bool, accept_new_host_keys: bool,
         redis_url: str | None, as_json: bool) -> None:
    """Validate the configuration here, then push it to the fleet and wait for the agents.

    Exit 0 when every host is ok or applied, 1 otherwise, 3 when the configuration
    here has CRITICAL findings (nothing is pushed).
    """
    chosen = open_inventory(inventory_path, limit)
    bus_redis, bus_key = fleet_bus_settings(chosen.hosts)
    options = PushOptions(
        config_dir=config_dir, check=check, diff=diff, canary=canary, batch=batch,
        max_fail=max_fail, forks=forks, wait=wait, timeout=timeout, force=force,
        accept_new_host_keys=accept_new_host_keys, redis_url=redis_url or bus_redis,
        bus_key=bus_key,
    )
    live = sys.stdout.isatty() and not as_json
    with _progress_display(live, [host.name for host in chosen.hosts], as_json) as progress:
        try:
            result = asyncio.run(PushRun(chosen.hosts, options, progress).run())
        except LocalConfigRefused as refused:
            if as_json:
                click.echo(json.dumps({"ok": False, "refused": str(refused),
                                       "local_validation": refused.report.to_dict()}, indent=2))
            else:
                click.echo(report_text(refused.report, title=f"{config_dir}: not pushed",
                                       colour=sys.stderr.isatty()), err=True)
            raise

    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result_text(result, check=check, with_hosts=live))
    sys.exit(0 if result.succeeded else EXIT_FAILED_HOSTS)


def host_line(host: HostResult) -> str:
    """One host's result, with its diff below it when one was asked for."""
    version = f"{host.before or '-'} -> {host.after or '-'}" if host.after != host.before \
        else f"{host.after or '-'}"
    reason = f": {host.reason}" if host.reason else ""
    line = f"{host.name:<16} {host.outcome:<12} {version} ({host.seconds:.2f}s){reason}"
    return f"{line}\n{host.diff.rstrip()}" if host.diff else line


def result_text(result: PushResult, *, check: bool, with_hosts: bool = True) -> str:
    """Per-host lines (unless already printed), who was left untouched, and the recap."""
    lines = [host_line(host) for host in result.results] if with_hosts else []
    if result.untouched:
        lines.append(f"stopped: {result.stopped_because}; not started: "
                     f"{', '.join(result.untouched)}")
    counts = result.to_dict()["counts"]
    recap = "  ".join(f"{name}={counts.get(name, 0)}" for name in
                      ("ok", "applied" if not check else "changed", "rejected", "hook_failed",
                       "stale", "unreachable", "failed"))
    lines.append(f"RECAP version {result.version}{' (check mode)' if check else ''}: {recap}"
                 f"  untouched={len(result.untouched)}")
    return "\n".join(lines)


@contextmanager
def _progress_display(live: bool, hosts: list[str], quiet: bool) -> Iterator[ProgressCallback]:
    """A rich live table on a terminal; otherwise each host's line as it finishes."""
    if not live:
        def plain(_host: str, _phase: str, result: HostResult | None) -> None:
            if result is not None and not quiet:
                click.echo(host_line(result))
        yield plain
        return

    from rich.live import Live
    from rich.table import Table

    phases = dict.fromkeys(hosts, "queued")

    def table() -> Table:
        grid = Table(title="hotconf push", expand=False)
        grid.add_column("host")
        grid.add_column("phase")
        for name, phase in phases.items():
            grid.add_row(name, phase)
        return grid

    with Live(table(), refresh_per_second=10, transient=True) as display:
        def update(host: str, phase: str, _result: HostResult | None) -> None:
            phases[host] = phase
            display.update(table())
        yield update
