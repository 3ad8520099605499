"""hotconf: the configuration model of AutoBot, with no network and no daemon.

Layering with provenance, the schema, validation, file safety and the message
formats the controller and the agent share. A service embeds it through
``Config``; tools use ``load_snapshot`` and ``evaluate``.
"""

from hotconf.config import Config, ReloadResult
from hotconf.errors import ConfigRejected, HotconfError
from hotconf.findings import Finding, Level, Report
from hotconf.snapshot import Snapshot, evaluate, load_snapshot

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigRejected",
    "Finding",
    "HotconfError",
    "Level",
    "ReloadResult",
    "Report",
    "Snapshot",
    "__version__",
    "evaluate",
    "load_snapshot",
]
