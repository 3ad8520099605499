"""Choosing how to watch the config directory, and keeping it watched.

``Watching`` picks inotify or polling (``auto`` prefers inotify and says why when it
cannot have it), falls back to polling if inotify breaks later, and adds a slow
periodic rescan that runs whatever the watcher: events say "look", the content
version says "changed", and a rescan catches what any watcher can miss (a change on a
network filesystem, a symlink swapped to another directory, an event dropped).

Its output is looks in a ``LookQueue``; ``agent.debounce`` turns them into reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

from agent.errors import WatcherUnavailable
from agent.inotify_watcher import InotifyWatcher, describe_inotify_error
from agent.looks import RESCAN, WATCH_ERROR, Look, LookQueue
from agent.poll_watcher import PollWatcher

logger = logging.getLogger(__name__)

WatcherMode = Literal["auto", "inotify", "poll"]
WATCHER_MODES: tuple[WatcherMode, ...] = get_args(WatcherMode)

DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_RESCAN_INTERVAL = 30.0

# Where inotify sees only this machine's writes, not the server's or the host's.
REMOTE_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "vboxsf", "ceph",
     "glusterfs", "fuse.glusterfs", "fuse.sshfs", "afs", "lustre"}
)


def filesystem_type(path: Path, mounts: Path = Path("/proc/self/mounts")) -> str | None:
    """The type of the filesystem ``path`` (or its nearest existing ancestor) is on."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return None
    target = path.absolute()
    while not target.exists() and target != target.parent:
        target = target.parent
    target = target.resolve()

    best: tuple[int, str] | None = None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        # /proc/mounts escapes spaces and tabs in mount points as octal (\040).
        mount_point = Path(fields[1].encode().decode("unicode_escape"))
        if target == mount_point or mount_point in target.parents:
            depth = len(mount_point.parts)
            if best is None or depth >= best[0]:
                best = (depth, fields[2])
    return best[1] if best else None


class Watching:
    """Watches one config directory and puts looks into ``looks`` until closed.

    Use it as an async context manager: entering chooses and arms the watcher (so a
    read of the directory after entering cannot miss a later change) and starts the
    background work; leaving stops it. Entering raises ``WatcherUnavailable`` when
    ``mode="inotify"`` was asked for and inotify cannot be had.

    ``kind`` is the watcher in use ("inotify" or "poll") and ``why`` says why it was
    chosen; both go into the log and the status report.
    """

    def __init__(
        self,
        config_dir: Path,
        looks: LookQueue,
        *,
        mode: WatcherMode = "auto",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        rescan_interval: float = DEFAULT_RESCAN_INTERVAL,
    ) -> None:
        if rescan_interval <= 0:
            raise ValueError(f"rescan interval must be above 0 seconds, not {rescan_interval}")
        self.config_dir = config_dir
        self.mode = mode
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self._looks = looks
        self._watcher: InotifyWatcher | PollWatcher | None = None
        self._task: asyncio.Task[None] | None = None
        self.why = ""

    @property
    def kind(self) -> str:
        return self._watcher.kind if self._watcher is not None else "none"

    async def __aenter__(self) -> Watching:
        self._watcher = self._choose()
        self._task = asyncio.create_task(self._run(), name="hotconf-watching")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop watching; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._watcher is not None:
            self._watcher.close()

    def _choose(self) -> InotifyWatcher | PollWatcher:
        if self.mode == "poll":
            self.why = "asked for with watcher=poll"
            return self._polling()

        if self.mode == "auto":
            fs_type = filesystem_type(self.config_dir)
            if fs_type in REMOTE_FILESYSTEMS:
                reason = f"{fs_type} is a network filesystem: inotify misses remote writes"
                logger.warning("falling back to polling: reason=%r", reason)
                self.why = reason
                return self._polling()

        try:
            watcher = InotifyWatcher(self.config_dir, self._looks)
        except OSError as exc:
            return self._inotify_unavailable(exc)
        try:
            watcher.start()
        except OSError as exc:
            watcher.close()
            return self._inotify_unavailable(exc)
        self.why = "asked for with watcher=inotify" if self.mode == "inotify" else "available"
        return watcher

    def _inotify_unavailable(self, exc: OSError) -> PollWatcher:
        reason = describe_inotify_error(exc)
        if self.mode == "inotify":
            msg = (
                f"cannot watch {self.config_dir} with inotify: {reason}; "
                "use --watcher auto or --watcher poll"
            )
            raise WatcherUnavailable(msg) from exc
        logger.warning("falling back to polling: reason=%r", reason)
        self.why = reason
        return self._polling()

    def _polling(self) -> PollWatcher:
        watcher = PollWatcher(self.config_dir, self._looks, interval=self.poll_interval)
        watcher.arm()
        return watcher

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._rescan_periodically())
            tasks.create_task(self._watch())

    async def _watch(self) -> None:
        while isinstance(self._watcher, InotifyWatcher) and self._watcher.broken is not None:
            reason = await self._watcher.broken

            # inotify broke under us (watch limit while re-arming, the fd failing).
            logger.warning(
                "inotify stopped working, falling back to polling: reason=%r interval=%s",
                reason,
                self.poll_interval,
            )
            self._watcher.close()
            self.why = reason
            self._watcher = self._polling()
            self._looks.put(Look.of(WATCH_ERROR))

        if isinstance(self._watcher, PollWatcher):
            await self._watcher.run()

    async def _rescan_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.rescan_interval)
            if isinstance(self._watcher, InotifyWatcher):
                self._watcher.verify()
            self._looks.put(Look.of(RESCAN))
