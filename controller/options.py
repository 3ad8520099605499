"""Options shared by several commands, so each is spelled and documented once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hotconf.envmap import DEFAULT_PREFIX

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG_DIR = "/etc/autobot"


def config_dir_option(function: F) -> F:
    """``--config-dir``: $HOTCONF_CONFIG_DIR, then /etc/autobot."""
    return click.option(
        "--config-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="HOTCONF_CONFIG_DIR",
        default=DEFAULT_CONFIG_DIR,
        show_default=True,
        show_envvar=True,
        help="Directory holding config.yaml and settings.json.",
    )(function)


def json_option(function: F) -> F:
    """``--json``: print machine-readable JSON instead of the human report."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON for machines instead of text.")(function)


def env_prefix_option(function: F) -> F:
    """``--env-prefix``: the prefix of the overriding variables ($HOTCONF_ENV_PREFIX)."""
    return click.option(
        "--env-prefix",
        default=DEFAULT_PREFIX,
        envvar="HOTCONF_ENV_PREFIX",
        show_default=True,
        show_envvar=True,
        help="Prefix of the environment variables that override the files.",
    )(function)
