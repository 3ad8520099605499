"""``--render FILE``: the effective configuration, written for the service to read.

JSON or YAML by the file's extension, written atomically with mode 0600. Secrets are
NOT masked here: this file is the service's configuration, the one place the values
must be whole, which is also why nobody but the owner may read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from agent.settings import RENDER_FORMATS
from hotconf.atomic import atomic_write

RENDER_MODE = 0o600


def render_effective(tree: dict[str, Any], path: Path) -> None:
    """Write ``tree`` to ``path`` as JSON or YAML; raises ``FileWriteError`` on failure."""
    if RENDER_FORMATS.get(path.suffix.lower()) == "json":
        data = json.dumps(tree, indent=2, sort_keys=True, default=str) + "\n"
    else:
        data = yaml.safe_dump(tree, sort_keys=True, default_flow_style=False, allow_unicode=True)
    atomic_write(path, data.encode("utf-8"), mode=RENDER_MODE)
