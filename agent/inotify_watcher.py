"""Watching the config directory with inotify, read from the event loop itself.

The inotify descriptor is registered with ``loop.add_reader``: no thread, no
``call_soon_threadsafe``, nothing scheduled from outside the loop (the seed's flaw 6).

What is watched, and why:

- the directory, for close-write (an in-place write finished), moved-to (an atomic
  rename landed, which is how push and most tools write), moved-from and delete (a
  file went away), create (a new file; its close-write follows);
- the directory's own delete-self and move-self: the watch follows the inode, so a
  directory moved aside or removed must be watched again by its path;
- while the directory is missing, its nearest existing ancestor, for the creation of
  the next path component, so the watch is re-armed when the directory reappears.

A queue overflow or a read error asks for a look anyway: a full rescan costs little
and an event lost is a change missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from pathlib import Path

from inotify_simple import INotify, flags

from agent.looks import DIRECTORY, INOTIFY, OVERFLOW, WATCH_ERROR, Look, LookQueue, is_watched_name

logger = logging.getLogger(__name__)

DIRECTORY_MASK = (
    flags.CLOSE_WRITE
    | flags.MOVED_TO
    | flags.MOVED_FROM
    | flags.CREATE
    | flags.DELETE
    | flags.DELETE_SELF
    | flags.MOVE_SELF
    | flags.ONLYDIR
)
ANCESTOR_MASK = (
    flags.CREATE | flags.MOVED_TO | flags.DELETE_SELF | flags.MOVE_SELF | flags.ONLYDIR
)
GONE = flags.DELETE_SELF | flags.MOVE_SELF


def describe_inotify_error(exc: OSError) -> str:
    """Say in words why inotify cannot be used, with the knob that fixes it."""
    if exc.errno == errno.ENOSPC:
        return "inotify watch limit reached (raise fs.inotify.max_user_watches)"
    if exc.errno == errno.EMFILE:
        return (
            "too many inotify instances or open files "
            "(raise fs.inotify.max_user_instances or the open-file limit)"
        )
    if exc.errno in (errno.ENOSYS, errno.EINVAL):
        return "inotify is not supported by this kernel"
    return f"inotify failed: {exc.strerror or exc}"


class InotifyWatcher:
    """Turns inotify events on one directory into looks.

    Create it, then ``start()`` it on the running loop; ``close()`` is safe to call
    twice. ``broken`` completes with a reason when inotify stops working (the watch
    limit reached while re-arming, the descriptor failing), so the caller can fall
    back to polling.

    Raises ``OSError`` from the constructor or ``start()`` when inotify cannot be
    used at all; ``describe_inotify_error`` turns it into words.
    """

    kind = "inotify"

    def __init__(self, config_dir: Path, looks: LookQueue) -> None:
        self._config_dir = config_dir.absolute()
        self._looks = looks
        self._inotify = INotify(nonblocking=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dir_wd: int | None = None
        self._ancestor: Path | None = None
        self._ancestor_wd: int | None = None
        self.broken: asyncio.Future[str] | None = None

    def start(self) -> None:
        """Arm the watch and start reading events on the running loop."""
        self._loop = asyncio.get_running_loop()
        self.broken = self._loop.create_future()
        self._arm()
        self._loop.add_reader(self._inotify.fileno(), self._on_readable)
        if self._dir_wd is None:
            logger.warning(
                "config directory missing, waiting for it: config_dir=%s watching=%s",
                self._config_dir,
                self._ancestor,
            )

    @property
    def armed(self) -> bool:
        """True while the directory itself is watched (not only an ancestor)."""
        return self._dir_wd is not None

    def verify(self) -> None:
        """Re-add the watch by path; a new descriptor means the directory was replaced.

        The periodic rescan calls this: a directory swapped behind a symlink, or
        replaced while events were lost, gets watched again.
        """
        if self._inotify.closed:
            return
        previous = self._dir_wd
        try:
            self._arm()
        except OSError as exc:
            self._fail(describe_inotify_error(exc))
            return
        if self._dir_wd != previous:
            logger.info("watch re-armed on rescan: config_dir=%s", self._config_dir)
            if previous is not None:
                self._forget(previous)
            self._looks.put(Look.of(DIRECTORY))

    def close(self) -> None:
        if self._inotify.closed:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._inotify.fileno())
        self._inotify.close()
        if self.broken is not None and not self.broken.done():
            self.broken.cancel()

    def _on_readable(self) -> None:
        try:
            events = self._inotify.read(timeout=0)
        except OSError as exc:
            logger.warning("inotify read failed, rescanning: error=%s", exc)
            self._looks.put(Look.of(WATCH_ERROR))
            self._fail(describe_inotify_error(exc))
            return

        names: set[str] = set()
        try:
            for event in events:
                self._handle(event.wd, event.mask, event.name, names)
        except OSError as exc:
            # Re-arming failed, most likely the watch limit: polling takes over.
            self._looks.put(Look.of(WATCH_ERROR))
            self._fail(describe_inotify_error(exc))
        if names:
            self._looks.put(Look.of(INOTIFY, names))

    def _handle(self, wd: int, mask: int, name: str, names: set[str]) -> None:
        if mask & flags.Q_OVERFLOW:
            logger.warning("inotify queue overflowed, rescanning: config_dir=%s", self._config_dir)
            self._looks.put(Look.of(OVERFLOW))
            return

        if wd == self._dir_wd and wd is not None:
            if mask & (GONE | flags.IGNORED):
                self._directory_gone(mask)
            elif is_watched_name(name):
                names.add(name)
            return

        ancestor_event = wd == self._ancestor_wd and wd is not None
        if ancestor_event and (mask & (GONE | flags.IGNORED) or name == self._next_component()):
            self._ancestor_changed()

    def _directory_gone(self, mask: int) -> None:
        how = "moved" if mask & flags.MOVE_SELF else "deleted"
        logger.warning("config directory %s, re-arming: config_dir=%s", how, self._config_dir)

        # A moved directory keeps its watch on the old inode; drop it by hand.
        stale, self._dir_wd = self._dir_wd, None
        self._forget(stale)
        self._arm()
        self._looks.put(Look.of(DIRECTORY))

    def _ancestor_changed(self) -> None:
        previous = self._ancestor_wd
        if self._arm():
            logger.info("config directory back, watch re-armed: config_dir=%s", self._config_dir)
            self._looks.put(Look.of(DIRECTORY))
        elif self._ancestor_wd != previous:
            logger.info("still waiting for the config directory: watching=%s", self._ancestor)

    def _arm(self) -> bool:
        """Watch the directory by path, or its nearest ancestor while it is missing.

        Returns True when the directory itself is watched.
        """
        try:
            self._dir_wd = self._inotify.add_watch(self._config_dir, DIRECTORY_MASK)
        except (FileNotFoundError, NotADirectoryError):
            self._watch_ancestor()
            # It may have appeared between the failed watch and the ancestor's.
            try:
                self._dir_wd = self._inotify.add_watch(self._config_dir, DIRECTORY_MASK)
            except (FileNotFoundError, NotADirectoryError):
                self._dir_wd = None
                return False

        stale, self._ancestor, self._ancestor_wd = self._ancestor_wd, None, None
        self._forget(stale)
        return True

    def _watch_ancestor(self) -> None:
        for ancestor in self._config_dir.parents:
            try:
                wd = self._inotify.add_watch(ancestor, ANCESTOR_MASK)
            except (FileNotFoundError, NotADirectoryError):
                continue
            stale, self._ancestor, self._ancestor_wd = self._ancestor_wd, ancestor, wd
            if stale != wd:
                self._forget(stale)
            return

    def _next_component(self) -> str | None:
        if self._ancestor is None:
            return None
        return self._config_dir.relative_to(self._ancestor).parts[0]

    def _forget(self, wd: int | None) -> None:
        if wd is None:
            return
        # The kernel may have dropped it already (the inode is gone): nothing to undo.
        with contextlib.suppress(OSError):
            self._inotify.rm_watch(wd)

    def _fail(self, reason: str) -> None:
        if self.broken is not None and not self.broken.done():
            self.broken.set_result(reason)
