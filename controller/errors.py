"""The errors the controller raises.

They extend ``hotconf.errors``::

    HotconfError
    └── ControllerError           something on the ops side went wrong
        └── InventoryError        an inventory file is missing or invalid, or a
                                  --limit pattern matches nothing

Messages name the file and line, the bad value and what to do next.
"""

from __future__ import annotations

from pathlib import Path

from hotconf.errors import HotconfError


class ControllerError(HotconfError):
    """The root of the controller's errors."""


class InventoryError(ControllerError):
    """An inventory is missing or invalid, or a host pattern selects nothing.

    ``path`` and ``line`` (1-based) say where, when the error points into a file.
    """

    exit_code = 2

    def __init__(
        self, message: str, *, path: Path | None = None, line: int | None = None
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line
