"""``hotconf-agent``: the command line of the agent daemon.

Thin by design: the options gather into ``AgentSettings`` (with the agent config
file, flags winning) and ``Agent.run`` does the rest. An expected error is one line
on stderr and an exit code: 2 for bad settings, 3 when nothing valid can be served
at start, 1 for anything else hotconf refuses.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from agent.daemon import Agent
from agent.debounce import DEFAULT_MAX_WAIT, DEFAULT_QUIET
from agent.settings import (
    DEFAULT_HOOK_TIMEOUT,
    DEFAULT_REDIS_CHECK_INTERVAL,
    DEFAULT_STALE_AFTER,
    HOST_ID_VARIABLE,
    load_settings,
)
from agent.watcher import DEFAULT_POLL_INTERVAL, DEFAULT_RESCAN_INTERVAL, WATCHER_MODES
from hotconf.errors import HotconfError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The hotconf agent: keep this machine's AutoBot configuration live and valid."""


@main.command()
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The configuration directory to watch (config.yaml, settings.json).")
@click.option("--agent-config", type=click.Path(dir_okay=False, path_type=Path),
              help="A YAML file with these settings (keys like the flags, with "
                   "underscores); flags win over it.")
@click.option("--host-id", help=f"This machine's id in reports [default: ${HOST_ID_VARIABLE}, "
                                "then the hostname].")
@click.option("--watcher", type=click.Choice(WATCHER_MODES),
              help="How to notice changes; auto prefers inotify and falls back to polling "
                   "[default: auto].")
@click.option("--poll-interval", type=float, metavar="SECONDS",
              help=f"Seconds between polling passes [default: {DEFAULT_POLL_INTERVAL:g}].")
@click.option("--rescan-interval", type=float, metavar="SECONDS",
              help="Seconds between full rescans, whatever the watcher "
                   f"[default: {DEFAULT_RESCAN_INTERVAL:g}].")
@click.option("--debounce", type=float, metavar="SECONDS",
              help=f"Quiet period before reading a change [default: {DEFAULT_QUIET:g}].")
@click.option("--debounce-max-wait", type=float, metavar="SECONDS",
              help="Longest wait for a quiet period while changes keep coming "
                   f"[default: {DEFAULT_MAX_WAIT:g}].")
@click.option("--redis", metavar="URL",
              help="Redis for reports and reload messages, e.g. redis://127.0.0.1:6379/0 "
                   "[default: off].")
@click.option("--bus-key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Shared HMAC key (mode 0600): sign reports, drop unsigned messages.")
@click.option("--hook", "hooks", multiple=True, metavar="CMD",
              help="A command run after each applied change, split like a shell would "
                   "but run without one; repeatable.")
@click.option("--hook-timeout", type=float, metavar="SECONDS",
              help=f"Seconds a hook may run before it is killed "
                   f"[default: {DEFAULT_HOOK_TIMEOUT:g}].")
@click.option("--signal", "signal", metavar="NAME",
              help="Signal a service instead (HUP, USR1...); needs --pidfile.")
@click.option("--pidfile", type=click.Path(dir_okay=False, path_type=Path),
              help="The pidfile of the service --signal goes to.")
@click.option("--render", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the effective configuration here for the service (.json, .yaml; "
                   "mode 0600, secrets included).")
@click.option("--stale-after", type=float, metavar="SECONDS",
              help="Report an announced version stale if its files never come "
                   f"[default: {DEFAULT_STALE_AFTER:g}].")
@click.option("--redis-check-interval", type=float, metavar="SECONDS",
              help="Seconds between round trips that prove the subscription alive "
                   f"[default: {DEFAULT_REDIS_CHECK_INTERVAL:g}].")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="[default: INFO]")
def run(agent_config: Path | None, **flags: Any) -> None:
    """Watch the configuration directory and apply each valid change.

    Environment switches: AUTOBOT_CONFIG_AUTO_RELOAD=false validates and reports at
    start and on SIGHUP without watching; AUTOBOT_CONFIG_DISTRIBUTED_RELOAD=false
    leaves Redis out. SIGTERM/SIGINT stop gracefully, a second one at once; SIGHUP
    re-reads and re-applies. Exit codes: 2 bad settings, 3 nothing valid to serve.
    """
    flags["hooks"] = list(flags["hooks"])
    try:
        settings = load_settings(flags, agent_config=agent_config)
    except HotconfError as exc:
        _fail(exc)
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT, stream=sys.stderr)

    try:
        asyncio.run(Agent(settings).run())
    except HotconfError as exc:
        _fail(exc)


def _fail(exc: HotconfError) -> NoReturn:
    click.echo(f"hotconf-agent: {exc}", err=True)
    sys.exit(exc.exit_code)
