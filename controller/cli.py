"""The ``hotconf`` command line: a thin layer over the controller's functions.

Commands are imported only when they run, so ``hotconf validate`` does not pay for
asyncssh or FastAPI. A new command is one line in ``COMMANDS``. Expected errors
(every ``HotconfError``) end as one line on stderr and the error's exit code:
0 fine, 1 errors found or an operation failed, 2 usage, 3 CRITICAL findings,
4 a lock held too long.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from hotconf.errors import HotconfError

COMMANDS: dict[str, str] = {
    "validate": "controller.config_commands:validate",
    "explain": "controller.config_commands:explain",
    "env": "controller.config_commands:env",
    "show": "controller.config_commands:show",
    "push": "controller.push_command:push",
    "status": "controller.status_command:status",
    "inventory": "controller.inventory_command:inventory",
    "serve": "controller.serve_command:serve",
    "sync": "controller.sync_commands:sync",
    "sync-status": "controller.sync_commands:sync_status",
    "history": "controller.sync_commands:history",
    "rollback": "controller.sync_commands:rollback_command",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HotconfError as exc:
            click.echo(f"hotconf: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=LazyGroup)
@click.version_option(package_name="hotconf")
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv for debug).")
def main(verbose: int) -> None:
    """Keep AutoBot's configuration valid, identical and live across the fleet."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
