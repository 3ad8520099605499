"""Commands that fold and return: sync, sync-status, history, rollback.

Each gathers its options and calls one function of ``controller.sync`` or
``controller.rollback``; this module only asks and prints. Exit codes: 0 done (or
nothing to do), 1 declined or failed, 2 no terminal to ask on (pass --yes), 3 refused
for CRITICAL findings, 4 the lock was held too long.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from controller.options import config_dir_option, json_option
from controller.render import report_text
from controller.rollback import RollbackResult, plan_rollback, rollback
from controller.sync import SyncResult, plan_sync, sync_to_base
from controller.sync import sync_status as sync_status_body
from hotconf.backups import DEFAULT_KEEP, BackupStore
from hotconf.version import SETTINGS_FILE, directory_version

EXIT_DECLINED = 1
EXIT_NO_TERMINAL = 2

F = TypeVar("F", bound=Callable[..., Any])


def keep_option(function: F) -> F:
    """``--keep-backups``: how many backup generations to keep."""
    return click.option(
        "--keep-backups", "keep", type=click.IntRange(min=1), default=DEFAULT_KEEP,
        envvar="HOTCONF_KEEP_BACKUPS", show_default=True, show_envvar=True,
        help="Backup generations kept; older ones are removed after each change.",
    )(function)


def yes_option(function: F) -> F:
    return click.option("--yes", "-y", is_flag=True,
                        help="Go ahead without asking (needed without a terminal).")(function)


@click.command()
@click.option("--dry-run", is_flag=True, help="Show the diff and change nothing.")
@yes_option
@json_option
@config_dir_option
@keep_option
def sync(dry_run: bool, yes: bool, as_json: bool, config_dir: Path, keep: int) -> None:
    """Fold settings.json into config.yaml as the new base, after a backup.

    Environment variables are never folded in. Comments and key order of config.yaml
    stay; sections that never belong in the base stay in settings.json. Exit 3 when
    the result would have CRITICAL findings.
    """
    if yes and not dry_run:
        result = sync_to_base(config_dir, keep=keep)
        _print_sync(result, as_json)
        sys.exit(result.exit_code)

    plan = plan_sync(config_dir)
    if dry_run and plan.status == "ready":
        plan.status = "dry_run"
        plan.message += " (dry run: nothing written)"
    if plan.status != "ready":
        _print_sync(plan, as_json)
        sys.exit(plan.exit_code)

    # The question goes to stderr, and so does the plan when stdout carries JSON.
    _print_sync(plan, False, err=as_json)
    _confirm_or_exit("Write this config.yaml and move settings.json into the backups?")
    result = sync_to_base(config_dir, expected_version=plan.version_before, keep=keep)
    _print_sync(result, as_json, diff=False)
    sys.exit(result.exit_code)


@click.command("sync-status")
@json_option
@config_dir_option
def sync_status(as_json: bool, config_dir: Path) -> None:
    """Say whether a sync can run, how many keys it changes, and when the last one was."""
    body = sync_status_body(config_dir)
    if as_json:
        _dump_json(body)
        return
    width = max(len(key) for key in body)
    for key, value in body.items():
        shown = json.dumps(value) if isinstance(value, (dict, bool)) or value is None else value
        click.echo(f"{key:<{width}}  {shown}")


@click.command()
@json_option
@config_dir_option
def history(as_json: bool, config_dir: Path) -> None:
    """List the backup generations, newest first, with time, version and size."""
    if not config_dir.is_dir():
        raise click.ClickException(f"{config_dir}: the config directory does not exist")
    current = directory_version(config_dir)
    generations = BackupStore(config_dir).generations()
    rows = [{**generation.to_dict(), "current": generation.version == current}
            for generation in generations]
    if as_json:
        _dump_json({"config_dir": str(config_dir), "version": current, "generations": rows})
        return
    if not rows:
        click.echo(f"{config_dir}: no backup generations yet (version {current})")
        return
    click.echo(f"{'generation':<36} {'version':<12} {'size':>7}  {'files':<26} reason")
    for row in rows:
        files = ",".join(item["name"] for item in row["files"])
        mark = "  (current)" if row["current"] else ""
        click.echo(f"{row['id']:<36} {row['version']:<12} {row['size']:>7}  {files:<26} "
                   f"{row['reason']}{mark}")


@click.command("rollback")
@click.argument("generation", required=False)
@yes_option
@json_option
@config_dir_option
@keep_option
def rollback_command(generation: str | None, yes: bool, as_json: bool, config_dir: Path,
                     keep: int) -> None:
    """Restore backup GENERATION (default: the one before the current files).

    GENERATION is an id from `hotconf history`, a unique prefix of one, or a version.
    The current files are backed up first, so a second rollback undoes the first.
    Exit 3 when the generation has CRITICAL findings.
    """
    if yes:
        result = rollback(config_dir, generation, keep=keep)
        _print_rollback(result, as_json)
        sys.exit(result.exit_code)

    plan = plan_rollback(config_dir, generation)
    if plan.status != "ready":
        _print_rollback(plan, as_json)
        sys.exit(plan.exit_code)
    _print_rollback(plan, False, err=as_json)
    _confirm_or_exit(f"Restore generation {plan.target.id}?")
    result = rollback(config_dir, generation or plan.target.id,
                      expected_version=plan.version_before, keep=keep)
    _print_rollback(result, as_json, diff=False)
    sys.exit(result.exit_code)


def _confirm_or_exit(question: str) -> None:
    if not sys.stdin.isatty():
        click.echo("hotconf: no terminal to ask on; nothing changed. Pass --yes to go ahead"
                   " without asking", err=True)
        sys.exit(EXIT_NO_TERMINAL)
    if not click.confirm(question, default=False, err=True):
        click.echo("hotconf: declined; nothing changed", err=True)
        sys.exit(EXIT_DECLINED)


def _print_sync(result: SyncResult, as_json: bool, *, err: bool = False,
                diff: bool = True) -> None:
    if as_json:
        _dump_json(result.to_dict())
        return
    lines: list[str] = []
    if result.status == "refused":
        lines.append(report_text(result.report, title=f"{result.config_dir}: sync refused",
                                 colour=_colour(err)))
    if diff and result.diff:
        lines.append(_coloured_diff(result.diff, _colour(err)).rstrip("\n"))
    if diff and result.changes:
        lines.append(f"changes ({len(result.changes)}):")
        for change in result.changes:
            shown = change.to_dict()
            before = "(new)" if change.added else _value_text(shown["before"])
            lines.append(f"  {change.path}: {before} -> {_value_text(shown['after'])}")
    if diff and result.kept_in_settings:
        lines.append(f"kept in {SETTINGS_FILE} (never in the base): "
                     f"{', '.join(result.kept_in_settings)}")
    lines.append(result.message)
    click.echo("\n".join(lines), err=err)


def _print_rollback(result: RollbackResult, as_json: bool, *, err: bool = False,
                    diff: bool = True) -> None:
    if as_json:
        _dump_json(result.to_dict())
        return
    lines: list[str] = []
    if result.status == "refused":
        lines.append(report_text(result.report, title=f"{result.config_dir}: rollback refused",
                                 colour=_colour(err)))
    if diff and result.diff:
        lines.append(_coloured_diff(result.diff, _colour(err)).rstrip("\n"))
    if diff and result.status in ("ready", "refused"):
        lines.extend(f"  {name}: {action}" for name, action in result.file_actions.items())
    lines.append(result.message)
    click.echo("\n".join(lines), err=err)


def _value_text(value: object) -> str:
    # As JSON, but as written: "été", not "\u00e9t\u00e9".
    return json.dumps(value, ensure_ascii=False)


def _colour(err: bool) -> bool:
    return (sys.stderr if err else sys.stdout).isatty()


def _coloured_diff(diff: str, colour: bool) -> str:
    if not colour:
        return diff
    colours = {"+": "green", "-": "red", "@": "cyan"}
    return "".join(
        click.style(line, fg=colours[line[:1]])
        if line[:1] in colours and not line.startswith(("+++", "---")) else line
        for line in diff.splitlines(keepends=True)
    )


def _dump_json(body: object) -> None:
    click.echo(json.dumps(body, indent=2, ensure_ascii=False, default=str))
