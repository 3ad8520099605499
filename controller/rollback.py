"""Rollback: put a backup generation's files back, after backing up today's.

By default the generation restored is the newest one that differs from the files on
disk: the state before the last replacement. Restoring backs up the current files
first, so a second rollback returns to where the first one started. A generation that
had no settings.json removes today's (its bytes are in the backup just taken).

Like sync, ``plan_rollback`` validates and shows the diff without the lock, and
``rollback`` does the work under the lock, refusing when the files changed since the
plan that was shown.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from controller.sync import StalePlan, require_config_dir
from hotconf.atomic import atomic_write, fsync_directory
from hotconf.backups import DEFAULT_KEEP, BackupFile, BackupStore, Generation
from hotconf.diffing import masked_unified_diff, secret_values
from hotconf.errors import BackupError, ConfigRejected, FileWriteError
from hotconf.findings import Level, Report
from hotconf.locking import DEFAULT_TIMEOUT_S, FileLock
from hotconf.snapshot import evaluate
from hotconf.version import BASE_FILE, MANAGED_FILES, content_version, read_managed_files

logger = logging.getLogger(__name__)

RollbackStatus = Literal["ready", "rolled_back", "unchanged", "refused"]

_FILES_ONLY: dict[str, str] = {}


@dataclass(slots=True)
class RollbackResult:
    """What a rollback would do or did; the body of ``hotconf rollback --json``."""

    config_dir: Path
    status: RollbackStatus
    message: str
    target: Generation
    version_before: str
    version_after: str
    file_actions: dict[str, str] = field(default_factory=dict)
    diff: str = ""
    report: Report = field(default_factory=Report)
    backup: Generation | None = None
    finished_at: datetime | None = None

    @property
    def exit_code(self) -> int:
        """3 when refused for CRITICAL findings, else 0."""
        return ConfigRejected.exit_code if self.status == "refused" else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "config_dir": str(self.config_dir),
            "generation": self.target.to_dict(),
            "version_before": self.version_before,
            "version_after": self.version_after,
            "files": self.file_actions,
            "diff": self.diff,
            "validation": self.report.to_dict(),
            "backup": self.backup.to_dict() if self.backup else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def plan_rollback(config_dir: Path, generation: str | None = None) -> RollbackResult:
    """What restoring ``generation`` (default: the one before the current) would do.

    Raises ``BackupError`` when the generation does not exist, is damaged, or there is
    no earlier generation to return to.
    """
    store = BackupStore(config_dir)
    current = _read_current(config_dir)
    return _plan(config_dir, store, current, generation)


def rollback(
    config_dir: Path,
    generation: str | None = None,
    *,
    expected_version: str | None = None,
    keep: int = DEFAULT_KEEP,
    lock_timeout: float = DEFAULT_TIMEOUT_S,
) -> RollbackResult:
    """Restore a generation under the lock, after backing up the current files.

    With ``expected_version`` (the plan's ``version_before``), raises ``StalePlan``
    when the files changed since. A generation with CRITICAL findings is refused
    (status ``refused``) and nothing changes.
    """
    require_config_dir(config_dir)
    if expected_version is None:
        # A refusal or "already there" writes nothing and needs no lock.
        first_look = plan_rollback(config_dir, generation)
        if first_look.status != "ready":
            return first_look

    store = BackupStore(config_dir, keep=keep)
    with FileLock(config_dir / BASE_FILE, timeout=lock_timeout, purpose="rollback"):
        current = _read_current(config_dir)
        plan = _plan(config_dir, store, current, generation)
        if expected_version is not None and plan.version_before != expected_version:
            msg = (
                f"{config_dir}: the files changed since the rollback was shown (version"
                f" {expected_version}, now {plan.version_before}); nothing was written."
                " Run hotconf rollback again"
            )
            raise StalePlan(msg)
        if plan.status != "ready":
            return plan
        restored = store.read(plan.target)
        plan.backup = store.take(current, reason="rollback")
        _restore(config_dir, current, restored, plan.target)
        store.prune()
        plan.status = "rolled_back"
        plan.finished_at = datetime.now(UTC)
        plan.version_after = content_version(read_managed_files(config_dir))
        plan.message = (
            f"restored generation {plan.target.id}; version {plan.version_before} ->"
            f" {plan.version_after}; the files replaced are in generation {plan.backup.id}"
        )

    logger.info(
        "rollback done config_dir=%s generation=%s version_before=%s version_after=%s",
        config_dir, plan.target.id, plan.version_before, plan.version_after,
    )
    return plan


def _read_current(config_dir: Path) -> dict[str, bytes]:
    require_config_dir(config_dir)
    return read_managed_files(config_dir)


def _plan(
    config_dir: Path, store: BackupStore, current: dict[str, bytes], wanted: str | None
) -> RollbackResult:
    version = content_version(current)
    target = store.get(wanted) if wanted else _previous(store, version, config_dir)
    restored = store.read(target)
    actions = {name: _action(current.get(name), restored.get(name)) for name in MANAGED_FILES}

    if target.version == version:
        return RollbackResult(config_dir, "unchanged",
                              f"the files already are generation {target.id}; nothing to do",
                              target, version, version, actions)

    checked = evaluate(restored, config_dir, _FILES_ONLY)
    before = evaluate(current, config_dir, _FILES_ONLY)
    known = secret_values(before.values) + secret_values(checked.values)
    diff = masked_unified_diff(BASE_FILE, current.get(BASE_FILE, b""),
                               restored.get(BASE_FILE, b""), secrets=known,
                               labels=("current", f"generation {target.id}"))
    if checked.report.critical:
        count = checked.report.count(Level.CRITICAL)
        return RollbackResult(
            config_dir, "refused",
            f"generation {target.id} has {count} CRITICAL finding(s); nothing changed",
            target, version, version, actions, diff, checked.report,
        )
    changed = ", ".join(f"{name} {action}" for name, action in actions.items()
                        if action != "unchanged")
    return RollbackResult(config_dir, "ready", f"restore generation {target.id}: {changed}",
                          target, version, target.version, actions, diff, checked.report)


def _previous(store: BackupStore, current_version: str, config_dir: Path) -> Generation:
    for generation in store.generations():
        if generation.version != current_version:
            return generation
    msg = (
        f"{config_dir}: no earlier backup generation to roll back to;"
        " run hotconf history to see what there is"
    )
    raise BackupError(msg)


def _recreate(target: Path, data: bytes, recorded: BackupFile | None) -> None:
    """Bring back a file that is gone today, with the mode and owner it had then."""
    mode = recorded.mode if recorded is not None else None
    atomic_write(target, data, mode=mode)
    if recorded is None or recorded.uid is None or recorded.gid is None:
        return
    try:
        os.chown(target, recorded.uid, recorded.gid)
    except PermissionError:
        logger.warning("owner not restored path=%s uid=%d gid=%d reason=%s", target,
                       recorded.uid, recorded.gid,
                       "only root may give a file away; run rollback as root or chown it")


def _action(current: bytes | None, restored: bytes | None) -> str:
    if current == restored:
        return "unchanged"
    if restored is None:
        return "removed"
    return "restored" if current is None else "replaced"


def _restore(config_dir: Path, current: dict[str, bytes], restored: dict[str, bytes],
             generation: Generation) -> None:
    recorded = {backup.name: backup for backup in generation.files}
    for name in MANAGED_FILES:
        target = config_dir / name
        if name in restored and restored[name] != current.get(name):
            if name in current:
                atomic_write(target, restored[name])  # keeps today's mode and owner
            else:
                _recreate(target, restored[name], recorded.get(name))
        elif name not in restored and name in current:
            try:
                target.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                msg = (
                    f"{target}: cannot remove it to match the generation: {exc.strerror};"
                    " the other files were restored. Remove it by hand"
                )
                raise FileWriteError(msg) from exc
    fsync_directory(config_dir)
