"""Sync-to-base: make what settings.json overrides the new config.yaml, losing nothing.

One sync, under the config lock:

1. read config.yaml and settings.json once (their bytes are what is folded, backed
   up and versioned);
2. fold settings.json into config.yaml's text (``hotconf.fold``): comments and key
   order stay, environment variables are never folded in, sections the schema keeps
   out of the base stay in settings.json;
3. validate the files as they will be on disk; any CRITICAL refuses the sync;
4. take a backup generation of both files, write config.yaml atomically, then move
   settings.json into the backups (a settings.json holding only the sections kept out
   of the base is written in its place).

``plan_sync`` does steps 1-3 without the lock and without writing: it serves
``--dry-run``, ``sync-status`` and the question asked on a terminal. ``sync_to_base``
does it all under the lock (an outcome that writes nothing, such as "no settings.json"
or a refusal, is answered without it); given the version the plan saw, it refuses
when the files changed in between, so what was shown is what gets written. The CLI
and the HTTP API both call these and render the ``SyncResult``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from controller.errors import ControllerError
from hotconf.atomic import atomic_write, fsync_directory, temp_path_for
from hotconf.backups import DEFAULT_KEEP, BackupStore, Generation
from hotconf.diffing import masked_unified_diff, secret_values
from hotconf.errors import ConfigRejected, FileWriteError
from hotconf.findings import Level, Report
from hotconf.fold import Change, fold_settings
from hotconf.locking import DEFAULT_TIMEOUT_S, FileLock
from hotconf.snapshot import evaluate
from hotconf.version import BASE_FILE, SETTINGS_FILE, content_version, read_managed_files

logger = logging.getLogger(__name__)

SYNC_STATE_FILE = Path(".hotconf") / "sync.json"

SyncStatus = Literal["ready", "synced", "dry_run", "nothing_to_sync", "unchanged", "refused"]

# No environment at all: only the files are folded and validated, so neither a secret
# nor a stray AUTOBOT_* variable of the operator's shell can shape the new base.
_FILES_ONLY: dict[str, str] = {}


class StalePlan(ControllerError):
    """The files changed between the plan that was shown and the sync that was asked."""


@dataclass(slots=True)
class SyncResult:
    """What a sync would do or did; the body of ``hotconf sync --json`` and the API."""

    config_dir: Path
    status: SyncStatus
    message: str
    version_before: str
    version_after: str
    changes: list[Change] = field(default_factory=list)
    kept_in_settings: list[str] = field(default_factory=list)
    diff: str = ""
    report: Report = field(default_factory=Report)
    generation: Generation | None = None
    finished_at: datetime | None = None
    new_files: dict[str, bytes | None] = field(default_factory=dict, repr=False)

    @property
    def exit_code(self) -> int:
        """3 when refused for CRITICAL findings, else 0."""
        return ConfigRejected.exit_code if self.status == "refused" else 0

    def to_dict(self) -> dict[str, Any]:
        """The result with secrets masked, for JSON."""
        return {
            "status": self.status,
            "message": self.message,
            "config_dir": str(self.config_dir),
            "version_before": self.version_before,
            "version_after": self.version_after,
            "changes": [change.to_dict() for change in self.changes],
            "kept_in_settings": self.kept_in_settings,
            "diff": self.diff,
            "validation": self.report.to_dict(),
            "backup": self.generation.to_dict() if self.generation else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def plan_sync(config_dir: Path) -> SyncResult:
    """What a sync of ``config_dir`` would do, without the lock and without writing.

    The status is ``ready`` (there is something to write), ``nothing_to_sync`` (no
    settings.json), ``unchanged`` (settings.json changes nothing in config.yaml) or
    ``refused`` (a file does not parse, or the result has CRITICAL findings).
    """
    return _plan(config_dir, _read_files(config_dir))


def sync_to_base(
    config_dir: Path,
    *,
    expected_version: str | None = None,
    keep: int = DEFAULT_KEEP,
    lock_timeout: float = DEFAULT_TIMEOUT_S,
) -> SyncResult:
    """Fold settings.json into config.yaml under the lock, after a backup generation.

    With ``expected_version`` (the ``version_before`` of a plan the user saw), raises
    ``StalePlan`` when the files are no longer that version. Returns the result:
    ``synced``, or the plan's status when there was nothing to write or it was refused.
    Raises ``LockTimeout``, ``FileWriteError`` or ``BackupError`` when those fail; the
    files are then as they were, or as the message says.
    """
    require_config_dir(config_dir)
    first_look: SyncResult | None = None
    if expected_version is None:
        # An answer that writes nothing needs no lock: no waiting, no lock file created.
        first_look = plan_sync(config_dir)
        if first_look.status != "ready":
            return first_look

    store = BackupStore(config_dir, keep=keep)
    with FileLock(config_dir / BASE_FILE, timeout=lock_timeout, purpose="sync"):
        files = _read_files(config_dir)
        version = content_version(files)
        if expected_version is not None and version != expected_version:
            msg = (
                f"{config_dir}: the files changed since the sync was shown (version"
                f" {expected_version}, now {version}); nothing was written."
                " Run hotconf sync again to see the new diff"
            )
            raise StalePlan(msg)
        # A plan depends only on the bytes it read: the same version, the same plan.
        if first_look is not None and first_look.version_before == version:
            plan = first_look
        else:
            plan = _plan(config_dir, files)
        if plan.status != "ready":
            return plan
        _apply(config_dir, files, plan, store)

    logger.info(
        "sync done config_dir=%s version_before=%s version_after=%s changes=%d backup=%s",
        config_dir, plan.version_before, plan.version_after, len(plan.changes),
        plan.generation.id if plan.generation else None,
    )
    return plan


def sync_status(config_dir: Path) -> dict[str, Any]:
    """What ``hotconf sync-status --json`` and ``GET /api/settings/sync-status`` answer.

    Whether a sync could run now, how many keys it would change, the validation
    summary of the files, and the backups and last sync there are. Writes nothing.
    """
    plan = plan_sync(config_dir)
    generations = BackupStore(config_dir).generations()
    record = last_sync(config_dir)
    return {
        "config_dir": str(config_dir),
        "version": plan.version_before,
        "settings_file_exists": (config_dir / SETTINGS_FILE).is_file(),
        "can_sync": plan.status == "ready",
        "status": plan.status,
        "message": plan.message,
        "changes": len(plan.changes),
        "validation_summary": plan.report.summary(),
        "backup_exists": bool(generations),
        "backups": len(generations),
        "last_sync": record.get("time") if record else None,
    }


def require_config_dir(config_dir: Path) -> None:
    """Raise ``ControllerError`` naming ``config_dir`` when it is not a directory."""
    if not config_dir.is_dir():
        msg = (
            f"{config_dir}: the config directory does not exist; pass --config-dir or set"
            " HOTCONF_CONFIG_DIR"
        )
        raise ControllerError(msg)


def last_sync(config_dir: Path) -> dict[str, Any] | None:
    """The record of the last successful sync (time, versions, backup), if any."""
    try:
        record = json.loads((config_dir / SYNC_STATE_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _read_files(config_dir: Path) -> dict[str, bytes]:
    require_config_dir(config_dir)
    try:
        return read_managed_files(config_dir)
    except OSError as exc:
        msg = f"{exc.filename}: cannot read: {exc.strerror}; check its permissions"
        raise ControllerError(msg) from exc


def _plan(config_dir: Path, files: dict[str, bytes]) -> SyncResult:
    version = content_version(files)
    current = evaluate(files, config_dir, _FILES_ONLY)

    def outcome(status: SyncStatus, message: str, report: Report) -> SyncResult:
        return SyncResult(config_dir, status, message, version, version, report=report)

    if SETTINGS_FILE not in files:
        return outcome("nothing_to_sync",
                       f"no {SETTINGS_FILE} in {config_dir}: nothing to sync", current.report)
    unreadable = [name for name in files if name not in current.documents]
    if unreadable:
        findings = [finding for finding in current.report if finding.level is Level.CRITICAL]
        names = " and ".join(unreadable)
        return outcome("refused", f"{names} cannot be read; nothing changed",
                       Report(findings))

    try:
        fold = fold_settings(files.get(BASE_FILE, b""), current.documents[SETTINGS_FILE].tree)
    except ConfigRejected as rejected:
        return outcome("refused", f"{rejected}; nothing changed", Report(rejected.findings))
    kept = sorted(fold.left_out)
    if not fold.changes:
        result = outcome("unchanged", f"{SETTINGS_FILE} changes nothing in {BASE_FILE}:"
                         " nothing to sync", current.report)
        result.kept_in_settings = kept
        return result

    new_settings = _settings_bytes(fold.left_out) if fold.left_out else None
    new_files = {BASE_FILE: fold.text}
    if new_settings is not None:
        new_files[SETTINGS_FILE] = new_settings
    after = evaluate(new_files, config_dir, _FILES_ONLY)
    known_secrets = secret_values(current.values) + secret_values(after.values)
    diff = masked_unified_diff(BASE_FILE, files.get(BASE_FILE, b""), fold.text,
                               secrets=known_secrets, labels=("current", "after sync"))

    if after.report.critical:
        status: SyncStatus = "refused"
        count = after.report.count(Level.CRITICAL)
        message = (
            f"the synced configuration would have {count} CRITICAL finding(s);"
            " nothing changed"
        )
    else:
        status = "ready"
        message = f"{SETTINGS_FILE} changes {len(fold.changes)} key(s) in {BASE_FILE}"
    return SyncResult(
        config_dir, status, message, version, content_version(new_files),
        changes=fold.changes, kept_in_settings=kept, diff=diff, report=after.report,
        new_files={BASE_FILE: fold.text, SETTINGS_FILE: new_settings},
    )


def _apply(
    config_dir: Path, files: dict[str, bytes], plan: SyncResult, store: BackupStore
) -> None:
    new_base = plan.new_files[BASE_FILE]
    assert new_base is not None
    generation = plan.generation = store.take(files, reason="sync")

    atomic_write(config_dir / BASE_FILE, new_base)
    kept_aside = _retire_settings(
        config_dir, files[SETTINGS_FILE], plan.new_files.get(SETTINGS_FILE), store, generation
    )
    store.prune()

    plan.status = "synced"
    plan.finished_at = datetime.now(UTC)
    plan.version_after = content_version(read_managed_files(config_dir))
    plan.message = _synced_message(plan, kept_aside)
    state = {
        "time": plan.finished_at.isoformat(),
        "version_before": plan.version_before,
        "version_after": plan.version_after,
        "backup": generation.id,
        "changes": len(plan.changes),
    }
    try:
        atomic_write(config_dir / SYNC_STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())
    except FileWriteError as exc:
        # The sync itself is done; only sync-status's "last sync" will be stale.
        logger.warning("sync record not written path=%s error=%s", SYNC_STATE_FILE, exc)


def _retire_settings(
    config_dir: Path,
    folded: bytes,
    replacement: bytes | None,
    store: BackupStore,
    generation: Generation,
) -> Path | None:
    """Move settings.json into the backups; put back what someone wrote meanwhile.

    The backup generation already holds the folded bytes. The file is renamed aside
    first, so an edit made while we worked is seen rather than deleted. Returns where
    such an edit was kept when it could not go back in place, else None.
    """
    settings = config_dir / SETTINGS_FILE
    aside = temp_path_for(store.directory / SETTINGS_FILE)
    status = settings.stat()
    try:
        os.rename(settings, aside)
    except OSError as exc:
        msg = (
            f"{settings}: config.yaml was synced, but settings.json could not be moved into"
            f" the backups: {exc.strerror}. Its content is in backup generation"
            f" {generation.id}; remove the file by hand"
        )
        raise FileWriteError(msg) from exc

    if aside.read_bytes() != folded:
        # Edited during the sync: those edits were not folded, so they must survive.
        try:
            os.link(aside, settings)
            os.unlink(aside)
            logger.warning("settings.json changed during the sync and was left in place")
            return None
        except FileExistsError:
            kept = aside.with_name(f"{SETTINGS_FILE}.unsynced-{os.getpid()}")
            os.rename(aside, kept)
            return kept
    os.unlink(aside)
    if replacement is not None:
        atomic_write(settings, replacement, mode=status.st_mode & 0o777)
        _give_back_owner(settings, status)
    fsync_directory(config_dir)
    return None


def _give_back_owner(path: Path, previous: os.stat_result) -> None:
    # The file is new, so it belongs to whoever runs the sync; the GUI's user must
    # still be able to write it.
    current = path.stat()
    if (current.st_uid, current.st_gid) == (previous.st_uid, previous.st_gid):
        return
    try:
        os.chown(path, previous.st_uid, previous.st_gid)
    except OSError as exc:
        logger.warning("owner of settings.json not kept path=%s uid=%d error=%s",
                       path, previous.st_uid, exc.strerror)


def _settings_bytes(sections: dict[str, Any]) -> bytes:
    return (json.dumps(sections, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _synced_message(plan: SyncResult, moved_aside: Path | None) -> str:
    backup = plan.generation.id if plan.generation else "?"
    parts = [
        f"synced {len(plan.changes)} key(s) into {BASE_FILE}; version {plan.version_before}"
        f" -> {plan.version_after}; backup generation {backup}"
    ]
    if plan.kept_in_settings:
        parts.append(f"{SETTINGS_FILE} now holds only {', '.join(plan.kept_in_settings)}"
                     " (never in the base)")
    else:
        parts.append(f"{SETTINGS_FILE} moved into the backups")
    if moved_aside is not None:
        parts.append(f"{SETTINGS_FILE} was edited during the sync; the edit is kept in"
                     f" {moved_aside}")
    return "; ".join(parts)
