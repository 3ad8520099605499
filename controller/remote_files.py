"""A host's configuration directory over SFTP: DESIGN.md's "Push, one host", steps 2-5.

SFTP alone, no remote shell, so the push user may be confined to ``internal-sftp``:

2. ``plan``: read the managed files there and compare them, and their content
   version, with the wanted ones. A host already identical gets nothing written.
3. ``apply`` first takes a backup generation of the current files, in the format of
   ``hotconf.backups`` (``.hotconf/backups/<file>.<UTC time>.<version>`` hard-linked
   from the live file, then the manifest), so ``hotconf history`` and ``rollback`` on
   the host read it like one taken there.
4. Each new file goes to ``.<file>.hotconf-tmp-push-<random>`` beside the target, is
   fsynced, takes the target's mode and owner, and is ``posix-rename``d over it. An
   interrupted push leaves the old file, whole; its temp is swept by a later push.
5. A ``settings.json`` the main host no longer has is removed, after its backup.

Backups beyond ``keep`` generations are pruned after a push, as ``BackupStore`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import posixpath
import secrets
import stat
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from controller.errors import RemoteFileError
from controller.inventory import Host
from controller.push_plan import AppliedPush, PushPlan, plan_push
from hotconf.atomic import DEFAULT_NEW_FILE_MODE, STALE_TEMP_AGE_S, TEMP_MARKER
from hotconf.backups import (
    BACKUP_NAME,
    BACKUPS_DIR,
    DEFAULT_KEEP,
    MANIFEST_NAME,
    ORPHAN_GRACE,
    STAMP_FORMAT,
    BackupFile,
    Generation,
    manifest_bytes,
)
from hotconf.version import MANAGED_FILES, content_version

logger = logging.getLogger(__name__)

STATUS_FILE = ".hotconf/status.json"
PUSH_TEMP_TAG = "push-"



_Result = TypeVar("_Result")

# A file to write: its real path (a symlink resolved) and its attributes, None if absent.
_Target = tuple[str, asyncssh.SFTPAttrs | None]


class RemoteConfigDir:
    """``host.config_dir`` reached through an open SFTP session.

    ``keep`` is how many backup generations to leave on the host; ``clock`` stamps
    them. Every SFTP failure is raised as ``RemoteFileError`` naming the host, the
    step and the remote path.
    """

    def __init__(
        self,
        sftp: asyncssh.SFTPClient,
        host: Host,
        *,
        keep: int = DEFAULT_KEEP,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1 backup generation, got {keep}")
        self.sftp = sftp
        self.host = host
        self.config_dir = str(host.config_dir)
        self.backups_dir = posixpath.join(self.config_dir, str(BACKUPS_DIR))
        self.keep = keep
        self._clock = clock

    async def read_files(self) -> dict[str, bytes]:
        """The managed files present on the host, by name; absent ones are left out."""
        reads = await _concurrently({name: self._read_optional(self._path(name))
                                     for name in MANAGED_FILES})
        return {name: data for name, data in reads.items() if data is not None}

    async def plan(self, wanted: Mapping[str, bytes]) -> PushPlan:
        """Step 2: what would change; reads only, so a check run changes nothing."""
        return plan_push(await self.read_files(), wanted)

    async def apply(self, plan: PushPlan) -> AppliedPush:
        """Steps 3-5 for ``plan``: back up, write each file atomically, remove.

        On failure, files already renamed into place stay (each whole); the others
        are as they were. The error says which.
        """
        if plan.in_sync:
            return AppliedPush(plan, None, (), ())
        written: list[str] = []
        removed: list[str] = []
        try:
            if not plan.current:
                await self._ensure_dir(self.config_dir, 0o755)
            targets = await self._resolve_all([*plan.current, *(c.name for c in plan.changes)])
            backups = await self._backup_entries()
            backups_ids = _complete_generations(backups)
            backup_id = await self._take_backup(plan.current, targets, backups)
            for change in plan.changes:
                if change.new is not None:
                    await self._replace(targets[change.name], change.new)
                    written.append(change.name)
            for change in plan.changes:
                if change.new is None:
                    await self._remove(change.name)
                    removed.append(change.name)
        except RemoteFileError as exc:
            done = ", ".join(written + removed) or "none"
            raise RemoteFileError(
                f"{exc.reason}. Files already changed: {done}; the others are as they "
                "were. Rerun the push once that is fixed",
                host=exc.host, address=exc.address, port=exc.port, path=exc.path,
            ) from exc

        await self._tidy(backups, added=backup_id is not None and backup_id not in backups_ids)
        logger.info(
            "pushed host=%s version=%s previous=%s written=%s removed=%s backup=%s",
            self.host.name, plan.wanted_version, plan.current_version, ",".join(written) or "-",
            ",".join(removed) or "-", backup_id or "-",
        )
        return AppliedPush(plan, backup_id, tuple(written), tuple(removed))

    async def push(self, wanted: Mapping[str, bytes], *, check: bool = False) -> AppliedPush:
        """Plan, and unless ``check``, apply: make the host's files exactly ``wanted``."""
        plan = await self.plan(wanted)
        if check:
            return AppliedPush(plan, None, (), ())
        return await self.apply(plan)

    async def read_status(self) -> dict[str, Any] | None:
        """The agent's ``.hotconf/status.json``; None when absent or not a JSON object."""
        data = await self._read_optional(self._path(STATUS_FILE))
        if data is None:
            return None
        try:
            status = json.loads(data)
        except ValueError:
            logger.debug("status.json is not JSON host=%s", self.host.name)
            return None
        return status if isinstance(status, dict) else None

    async def _read_optional(self, path: str) -> bytes | None:
        with self._step("read", path):
            try:
                async with self.sftp.open(path, "rb") as remote:
                    data: bytes = await remote.read()
                    return data
            except asyncssh.SFTPNoSuchFile:
                return None

    async def _replace(self, target: _Target, data: bytes) -> None:
        path, previous = target
        mode = stat.S_IMODE(previous.permissions) if previous and previous.permissions else (
            DEFAULT_NEW_FILE_MODE)
        directory, base = posixpath.split(path)
        temp = posixpath.join(directory, f".{base}{TEMP_MARKER}{PUSH_TEMP_TAG}"
                                         f"{secrets.token_hex(6)}")

        try:
            with self._step("write", path):
                async with self.sftp.open(temp, "xb", asyncssh.SFTPAttrs(permissions=0o600)) as f:
                    await f.write(data)
                    await f.chmod(mode)
                    await self._keep_owner(f, previous, path)
                    await self._fsync(f)
            with self._step("rename into place", path):
                await self.sftp.posix_rename(temp, path)
        except RemoteFileError:
            await self._remove_quietly(temp)
            raise

    async def _keep_owner(
        self, temp: asyncssh.SFTPClientFile, previous: asyncssh.SFTPAttrs | None, path: str
    ) -> None:
        if previous is None or previous.uid is None or previous.gid is None:
            return
        mine = await temp.stat()
        if (mine.uid, mine.gid) == (previous.uid, previous.gid):
            return
        try:
            await temp.chown(previous.uid, previous.gid)
        except asyncssh.SFTPPermissionDenied:
            logger.warning("owner not kept host=%s path=%s uid=%s gid=%s reason=%s",
                           self.host.name, path, previous.uid, previous.gid,
                           "only root may give a file away; push as the owner or as root")

    async def _fsync(self, remote: asyncssh.SFTPClientFile) -> None:
        try:
            await remote.fsync()
        except asyncssh.SFTPOpUnsupported:
            logger.warning("no fsync on this SFTP server host=%s durability=%s",
                           self.host.name, "until the host's next writeback")

    async def _remove(self, name: str) -> None:
        path = self._path(name)
        with self._step("remove", path), contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await self.sftp.remove(path)

    async def _resolve_all(self, names: list[str]) -> dict[str, _Target]:
        return await _concurrently({name: self._resolve(self._path(name))
                                    for name in dict.fromkeys(names)})

    async def _resolve(self, path: str) -> _Target:
        """The file to write for ``path``, and its attributes (None when absent).

        A symlinked config file is replaced where it points; the link stays a link.
        """
        with self._step("stat", path):
            try:
                attrs = await self.sftp.lstat(path)
            except asyncssh.SFTPNoSuchFile:
                return path, None
            if attrs.permissions is not None and stat.S_ISLNK(attrs.permissions):
                resolved: str = await self.sftp.realpath(path)
                return resolved, await self.sftp.stat(resolved)
        return path, attrs

    async def _take_backup(
        self, current: Mapping[str, bytes], targets: Mapping[str, _Target], entries: list[str]
    ) -> str | None:
        if not current:
            return None
        version = content_version(current)
        newest = _newest_generation(entries)
        if newest is not None and newest.endswith(f".{version}"):
            return newest

        taken_at: datetime = self._clock()
        generation_id = f"{taken_at.strftime(STAMP_FORMAT)}.{version}"
        files = []
        for name in sorted(current):
            backup = posixpath.join(self.backups_dir, f"{name}.{generation_id}")
            await self._link_or_copy(targets[name][0], backup, current[name])
            files.append(BackupFile(name, len(current[name]), _sha256(current[name]),
                                    Path(backup)))

        generation = Generation(generation_id, taken_at, version, tuple(files), "push")
        manifest = posixpath.join(self.backups_dir, f"{MANIFEST_NAME}.{generation_id}.json")
        await self._create_file(manifest, manifest_bytes(generation))
        return generation_id

    async def _link_or_copy(self, source: str, backup: str, data: bytes) -> None:
        with self._step("hard-link the backup", backup):
            try:
                await self.sftp.link(source, backup)
                return
            except asyncssh.SFTPOpUnsupported:
                pass
        # A server without hardlink@openssh.com gets a copy of the bytes we just read.
        await self._create_file(backup, data)

    async def _create_file(self, path: str, data: bytes) -> None:
        # Written under a temp name and linked into place: appears whole, never replaces.
        temp = f"{path}{TEMP_MARKER}{PUSH_TEMP_TAG}{secrets.token_hex(6)}"
        try:
            with self._step("write", path):
                async with self.sftp.open(temp, "xb", asyncssh.SFTPAttrs(permissions=0o600)) as f:
                    await f.write(data)
                    await self._fsync(f)
                try:
                    await self.sftp.link(temp, path)
                except asyncssh.SFTPOpUnsupported:
                    await self.sftp.posix_rename(temp, path)
        finally:
            await self._remove_quietly(temp)

    async def _tidy(self, backups: list[str], *, added: bool) -> None:
        """Prune old backup generations and sweep stale push temps; failures only warn.

        ``backups`` lists the backups directory as it was before this push, ``added``
        says whether this push took a new generation since.
        """
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._prune_backups(backups, added=added))
                group.create_task(self._sweep_temps())
        except* (RemoteFileError, asyncssh.Error, OSError) as failures:
            logger.warning("tidying skipped host=%s reason=%s", self.host.name,
                           failures.exceptions[0])

    async def _prune_backups(self, entries: list[str], *, added: bool) -> None:
        # A generation this push added is the newest and is never pruned, so the listing
        # from before it, with one place kept for it, says what goes.
        complete = sorted(_complete_generations(entries), reverse=True)
        doomed = set(complete[self.keep - 1 if added else self.keep:])
        cutoff = self._clock() - ORPHAN_GRACE
        removals = []
        for entry in entries:
            match = BACKUP_NAME.match(entry)
            if match is None:
                continue
            generation_id = f"{match['stamp']}.{match['version']}"
            orphan = generation_id not in complete and _stamp_time(match["stamp"]) < cutoff
            if generation_id in doomed or orphan:
                # The manifest goes first, so a half-removed generation reads as incomplete.
                removals.append((match["name"] != MANIFEST_NAME, entry))
        for _, entry in sorted(removals):
            await self._remove_quietly(posixpath.join(self.backups_dir, entry))
        if doomed:
            logger.info("backup generations pruned host=%s count=%d keep=%d",
                        self.host.name, len(doomed), self.keep)

    async def _sweep_temps(self) -> None:
        marker = f"{TEMP_MARKER}{PUSH_TEMP_TAG}"
        with self._step("list", self.config_dir):
            names = await self.sftp.readdir(self.config_dir)
        now = time.time()
        for entry in names:
            filename = str(entry.filename)
            mtime = entry.attrs.mtime or 0
            if marker in filename and now - mtime > STALE_TEMP_AGE_S:
                await self._remove_quietly(posixpath.join(self.config_dir, filename))
                logger.info("removed stale push temp host=%s path=%s", self.host.name, filename)

    async def _backup_entries(self) -> list[str]:
        """The backups directory's entries; the directory is created when missing."""
        with self._step("list", self.backups_dir):
            try:
                return [str(name) for name in await self.sftp.listdir(self.backups_dir)]
            except asyncssh.SFTPNoSuchFile:
                pass
        await self._ensure_dir(posixpath.dirname(self.backups_dir), 0o755)
        await self._ensure_dir(self.backups_dir, 0o700)
        return []

    async def _ensure_dir(self, path: str, mode: int) -> None:
        with self._step("create the directory", path):
            if await self.sftp.isdir(path):
                return
            await self.sftp.makedirs(path, asyncssh.SFTPAttrs(permissions=mode), exist_ok=True)

    async def _remove_quietly(self, path: str) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            await self.sftp.remove(path)

    def _path(self, name: str) -> str:
        return posixpath.join(self.config_dir, name)

    @contextlib.contextmanager
    def _step(self, step: str, path: str) -> Iterator[None]:
        try:
            yield
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection,
                asyncssh.DisconnectError, ConnectionError) as exc:
            raise self._error(step, path, f"the connection was lost ({_describe(exc)})") from exc
        except asyncssh.SFTPError as exc:
            raise self._error(step, path, _describe(exc)) from exc
        except OSError as exc:
            raise self._error(step, path, exc.strerror or str(exc)) from exc

    def _error(self, step: str, path: str, reason: str) -> RemoteFileError:
        return RemoteFileError(
            f"cannot {step} {path}: {reason}",
            host=self.host.name, address=self.host.address, port=self.host.port, path=path,
        )


async def _concurrently(steps: Mapping[str, Coroutine[Any, Any, _Result]]) -> dict[str, _Result]:
    """Run ``steps`` at once; the first ``RemoteFileError`` is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = {name: group.create_task(step) for name, step in steps.items()}
    except ExceptionGroup as failures:
        # Callers, and the push above them, handle one error naming one file.
        first = failures.exceptions[0]
        if isinstance(first, RemoteFileError):
            raise first from None
        raise
    return {name: task.result() for name, task in tasks.items()}


def _newest_generation(entries: list[str]) -> str | None:
    ids = _complete_generations(entries)
    # Ids start with a fixed-width UTC stamp, so the greatest is the newest.
    return max(ids) if ids else None


def _complete_generations(entries: list[str]) -> set[str]:
    """Ids of the generations whose manifest exists."""
    ids = set()
    for entry in entries:
        match = BACKUP_NAME.match(entry)
        if match is not None and match["name"] == MANIFEST_NAME and match["suffix"]:
            ids.add(f"{match['stamp']}.{match['version']}")
    return ids


def _stamp_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    return reason or type(exc).__name__

