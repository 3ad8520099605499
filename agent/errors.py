"""The errors the agent raises, extending ``hotconf.errors``::

    HotconfError
    └── AgentError                 the agent cannot do what it was asked
        ├── AgentSettingsError     a flag or the agent config file is wrong
        └── WatcherUnavailable     the chosen way of watching cannot start
"""

from __future__ import annotations

from hotconf.errors import HotconfError


class AgentError(HotconfError):
    """The agent cannot do what it was asked."""


class AgentSettingsError(AgentError):
    """A flag, an environment switch or the agent config file is wrong."""

    exit_code = 2


class WatcherUnavailable(AgentError):
    """The watcher asked for cannot watch this directory (inotify missing, limits)."""
