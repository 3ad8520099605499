"""What a push would change on one host: the plan, file by file, and what it did.

Pure comparison, no I/O: ``plan_push`` takes the files on the host and the wanted
ones; ``controller.remote_files`` carries the plan out over SFTP.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from hotconf.version import BASE_FILE, MANAGED_FILES, content_version

# settings.json lands before config.yaml: an agent waking between the two sees the
# old base with the new overrides for a moment, never a new base with stale overrides.
_WRITE_ORDER = {name: index for index, name in enumerate(sorted(MANAGED_FILES,
                                                                 key=lambda n: n == BASE_FILE))}


class FileAction(enum.StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class FileChange:
    """One managed file that differs: what is there (``old``) and what should be."""

    name: str
    action: FileAction
    old: bytes | None
    new: bytes | None

    def describe(self) -> str:
        """``replace config.yaml (1200 -> 1250 bytes)`` and the like."""
        if self.action is FileAction.CREATE:
            return f"create {self.name} ({len(self.new or b'')} bytes)"
        if self.action is FileAction.REMOVE:
            return f"remove {self.name} ({len(self.old or b'')} bytes, kept in the backup)"
        return f"replace {self.name} ({len(self.old or b'')} -> {len(self.new or b'')} bytes)"


@dataclass(frozen=True, slots=True)
class PushPlan:
    """What a push would change on one host; empty ``changes`` means identical."""

    current: Mapping[str, bytes]
    wanted: Mapping[str, bytes]
    changes: tuple[FileChange, ...]

    @property
    def current_version(self) -> str:
        return content_version(self.current)

    @property
    def wanted_version(self) -> str:
        return content_version(self.wanted)

    @property
    def in_sync(self) -> bool:
        return not self.changes


@dataclass(frozen=True, slots=True)
class AppliedPush:
    """What ``apply`` did: the backup generation taken and the files changed."""

    plan: PushPlan
    backup_id: str | None
    written: tuple[str, ...]
    removed: tuple[str, ...]


def plan_push(current: Mapping[str, bytes], wanted: Mapping[str, bytes]) -> PushPlan:
    """Compare the files on a host with the wanted ones, file by file."""
    changes: list[FileChange] = []
    for name in sorted(set(current) | set(wanted), key=_WRITE_ORDER.__getitem__):
        old, new = current.get(name), wanted.get(name)
        if old == new:
            continue
        if old is None:
            action = FileAction.CREATE
        elif new is None:
            action = FileAction.REMOVE
        else:
            action = FileAction.REPLACE
        changes.append(FileChange(name, action, old, new))
    return PushPlan(dict(current), dict(wanted), tuple(changes))
