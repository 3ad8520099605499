"""The agent's settings: flags, the agent config file, and the deployment switches.

Three sources, in rising precedence: the built-in defaults, the agent config file
(``--agent-config FILE``, YAML, keys named like the long flags with underscores) and
the flags. The seed's deployment switches come from the environment on top:
``AUTOBOT_CONFIG_AUTO_RELOAD=false`` (validate and report, but do not watch) and
``AUTOBOT_CONFIG_DISTRIBUTED_RELOAD=false`` (no Redis). They steer the agent; they are
not configuration keys.

Every mistake is an ``AgentSettingsError`` naming the flag or the file and key.
"""

from __future__ import annotations

import difflib
import logging
import os
import shlex
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import yaml

from agent.debounce import DEFAULT_MAX_WAIT, DEFAULT_QUIET
from agent.errors import AgentSettingsError
from agent.watcher import DEFAULT_POLL_INTERVAL, DEFAULT_RESCAN_INTERVAL, WatcherMode
from hotconf import bus
from hotconf.errors import BusMessageError

logger = logging.getLogger(__name__)

AUTO_RELOAD_SWITCH = "AUTOBOT_CONFIG_AUTO_RELOAD"
DISTRIBUTED_RELOAD_SWITCH = "AUTOBOT_CONFIG_DISTRIBUTED_RELOAD"
HOST_ID_VARIABLE = "VM_HOSTNAME"

DEFAULT_HOOK_TIMEOUT = 30.0
DEFAULT_STALE_AFTER = 10.0
DEFAULT_REDIS_CHECK_INTERVAL = 5.0
RENDER_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
REDIS_SCHEMES = ("redis", "rediss", "unix")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Everything one agent run needs to know, checked and with defaults filled in."""

    config_dir: Path
    host_id: str
    watcher: WatcherMode = "auto"
    poll_interval: float = DEFAULT_POLL_INTERVAL
    rescan_interval: float = DEFAULT_RESCAN_INTERVAL
    debounce: float = DEFAULT_QUIET
    debounce_max_wait: float = DEFAULT_MAX_WAIT
    redis: str | None = None
    bus_key_file: Path | None = None
    hooks: tuple[tuple[str, ...], ...] = ()
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT
    signal: signal.Signals | None = None
    pidfile: Path | None = None
    render: Path | None = None
    stale_after: float = DEFAULT_STALE_AFTER
    redis_check_interval: float = DEFAULT_REDIS_CHECK_INTERVAL
    log_level: str = "INFO"
    auto_reload: bool = True
    distributed_reload: bool = True
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def uses_redis(self) -> bool:
        return self.redis is not None and self.distributed_reload


# What the agent config file may hold: its key, and whether it is a path.
FILE_KEYS: dict[str, bool] = {
    "config_dir": True, "host_id": False, "watcher": False, "poll_interval": False,
    "rescan_interval": False, "debounce": False, "debounce_max_wait": False,
    "redis": False, "bus_key_file": True, "hooks": False, "hook_timeout": False,
    "signal": False, "pidfile": True, "render": True, "stale_after": False,
    "redis_check_interval": False, "log_level": False,
}


def load_settings(
    flags: Mapping[str, Any],
    *,
    agent_config: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentSettings:
    """Merge the agent config file and the flags (flags win); check everything.

    ``flags`` maps setting names to values, None meaning "not given". ``hooks`` from
    the flags are command lines split like a shell would (no shell runs them).
    Raises ``AgentSettingsError`` naming the file and key, or the flag, at fault.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, tuple[Any, str]] = {}
    if agent_config is not None:
        for key, value in read_agent_config(agent_config).items():
            raw[key] = (value, f"{agent_config}: {key}")
    for key, value in flags.items():
        if value is None or (key == "hooks" and not value):
            continue
        raw[key] = (value, f"--{key.replace('_', '-')}")

    values: dict[str, Any] = {}
    for key, (value, where) in raw.items():
        values[key] = _check(key, value, where)
    if "config_dir" not in values:
        raise AgentSettingsError(
            "no config directory: give --config-dir DIR or config_dir in the agent config file"
        )
    values["host_id"] = _host_id(values.get("host_id"), environ)
    _check_signal_pair(values)

    notes: list[str] = []
    values["auto_reload"] = _switch(environ, AUTO_RELOAD_SWITCH)
    values["distributed_reload"] = _switch(environ, DISTRIBUTED_RELOAD_SWITCH)
    if not values["distributed_reload"] and values.get("redis"):
        notes.append(f"{DISTRIBUTED_RELOAD_SWITCH}=false: Redis is not used, --redis is ignored")
    if not values["auto_reload"]:
        notes.append(
            f"{AUTO_RELOAD_SWITCH}=false: not watching; validating at start and on SIGHUP only"
        )
    return AgentSettings(**values, notes=tuple(notes))


def read_agent_config(path: Path) -> dict[str, Any]:
    """The agent config file's mappings, paths made absolute against its directory."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentSettingsError(f"agent config {path} cannot be read: {exc.strerror}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise AgentSettingsError(f"{where}: not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise AgentSettingsError(f"{path}: expected a mapping of settings at the top")

    settings: dict[str, Any] = {}
    for key, value in document.items():
        if key not in FILE_KEYS:
            close = difflib.get_close_matches(str(key), FILE_KEYS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            known = ", ".join(FILE_KEYS)
            raise AgentSettingsError(f"{path}: {key}: unknown setting{hint} (known: {known})")
        if FILE_KEYS[key] and isinstance(value, str):
            value = path.parent / Path(value).expanduser()
        settings[key] = value
    return settings


def _check(key: str, value: Any, where: str) -> Any:
    if key in ("poll_interval", "rescan_interval", "hook_timeout", "stale_after",
               "redis_check_interval"):
        return _seconds(value, where, minimum_exclusive=True)
    if key in ("debounce", "debounce_max_wait"):
        return _seconds(value, where, minimum_exclusive=False)
    if key == "watcher":
        if value not in get_args(WatcherMode):
            raise AgentSettingsError(
                f"{where}: {value!r} is not a watcher; use one of "
                f"{', '.join(get_args(WatcherMode))}"
            )
        return value
    if key in ("config_dir", "bus_key_file", "pidfile", "render"):
        if not isinstance(value, str | Path) or not str(value):
            raise AgentSettingsError(f"{where}: expected a path, got {value!r}")
        path = Path(value).expanduser().absolute()
        if key == "render" and path.suffix.lower() not in RENDER_FORMATS:
            raise AgentSettingsError(
                f"{where}: {path.name} must end in .json, .yaml or .yml "
                "(the extension picks the format)"
            )
        return path
    if key == "hooks":
        return _hooks(value, where)
    if key == "signal":
        return _signal(value, where)
    if key == "log_level":
        level = str(value).upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise AgentSettingsError(f"{where}: {value!r} is not DEBUG, INFO, WARNING or ERROR")
        return level
    if key in ("host_id", "redis"):
        if not isinstance(value, str) or not value:
            raise AgentSettingsError(f"{where}: expected a non-empty string, got {value!r}")
        if key == "redis":
            _check_redis_url(value, where)
        return value
    raise AgentSettingsError(f"{where}: unknown setting")


def _check_redis_url(url: str, where: str) -> None:
    # Caught here, a typo is one line and exit 2; left to the Redis client, it would be
    # a traceback at every reconnect, forever. The URL may hold a password: never echo it.
    example = "use redis://HOST:PORT/DB (rediss:// for TLS, unix:///PATH for a socket)"
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise AgentSettingsError(f"{where}: not a Redis URL; {example}")
    try:
        _ = parts.port  # reading it parses it
    except ValueError:
        raise AgentSettingsError(f"{where}: the port is not a number from 0 to 65535; "
                                 f"{example}") from None
    if parts.scheme == "unix" and not parts.path:
        raise AgentSettingsError(f"{where}: a unix:// URL needs the socket's path; {example}")


def _seconds(value: Any, where: str, *, minimum_exclusive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AgentSettingsError(f"{where}: expected a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except ValueError:
        raise AgentSettingsError(f"{where}: {value!r} is not a number of seconds") from None
    too_small = seconds <= 0 if minimum_exclusive else seconds < 0
    if too_small or seconds != seconds or seconds == float("inf"):
        bound = "above 0" if minimum_exclusive else "0 or more"
        raise AgentSettingsError(f"{where}: {value!r} must be {bound} seconds")
    return seconds


def _hooks(value: Any, where: str) -> tuple[tuple[str, ...], ...]:
    items = value if isinstance(value, list | tuple) else [value]
    hooks = []
    for index, item in enumerate(items):
        spot = f"{where}[{index}]" if isinstance(value, list | tuple) else where
        if isinstance(item, str):
            try:
                argv = shlex.split(item)
            except ValueError as exc:
                raise AgentSettingsError(f"{spot}: cannot split {item!r}: {exc}") from None
        elif isinstance(item, list) and all(isinstance(part, str) for part in item):
            argv = list(item)
        else:
            raise AgentSettingsError(
                f"{spot}: a hook is a command line or a list of arguments, got {item!r}"
            )
        if not argv or not argv[0]:
            raise AgentSettingsError(f"{spot}: empty hook command")
        if any("\0" in part for part in argv):
            # No program can receive a NUL in its arguments; exec would refuse it later.
            raise AgentSettingsError(f"{spot}: a hook argument holds a NUL byte; remove it")
        hooks.append(tuple(argv))
    return tuple(hooks)


def _signal(value: Any, where: str) -> signal.Signals:
    name = str(value).upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return signal.Signals[name]
    except KeyError:
        raise AgentSettingsError(
            f"{where}: {value!r} is not a signal name; use HUP, USR1, USR2 or TERM"
        ) from None


def _check_signal_pair(values: Mapping[str, Any]) -> None:
    if (values.get("signal") is None) != (values.get("pidfile") is None):
        raise AgentSettingsError(
            "--signal and --pidfile go together: the signal is sent to the pid in the file"
        )


def _host_id(given: str | None, environ: Mapping[str, str]) -> str:
    host_id = given or environ.get(HOST_ID_VARIABLE) or socket.gethostname()
    source = "--host-id" if given else (
        HOST_ID_VARIABLE if environ.get(HOST_ID_VARIABLE) else "the hostname"
    )
    # The bus decides what a host id may look like; ask it.
    try:
        bus.ReloadMessage(version="0" * 12, files=(), origin=host_id)
    except BusMessageError as exc:
        raise AgentSettingsError(f"host id from {source}: {exc}") from None
    return host_id


def _switch(environ: Mapping[str, str], name: str) -> bool:
    text = environ.get(name)
    if text is None or not text.strip():
        return True
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise AgentSettingsError(f"{name}={text!r}: use true or false")

