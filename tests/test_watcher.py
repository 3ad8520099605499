"""The watchers, on real files with real inotify and real polling.

A ``Reader`` plays the reload loop: on every look it reads the directory's content
version, as the agent does. A test makes one step of a save, then waits (with a
deadline) until the reader has read the state that step left, in a look later than
the one the previous step matched; if the watcher missed the step, no look comes and
the wait fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from coarse_fs import coarse_filesystem
from editor_saves import (
    atomic_replace,
    overwrite_same_size,
    vim_move_aside,
    vim_probe,
    write_in_place,
)

from agent.errors import WatcherUnavailable
from agent.looks import DIRECTORY, INOTIFY, OVERFLOW, RESCAN, Look, LookQueue
from agent.poll_watcher import PollWatcher
from agent.watcher import WatcherMode, Watching, filesystem_type
from hotconf.version import content_version, directory_version

BASE = b"backend:\n  server_port: 8001\n"
CHANGED = b"backend:\n  server_port: 8002\n"
SETTINGS = b'{"ui": {"theme": "dark"}}\n'
POLL_INTERVAL = 0.05
DEADLINE = 10.0


def version_of(**files: bytes) -> str:
    return content_version({name.replace("_", "."): data for name, data in files.items()})


class Reader:
    """Takes every look and reads the content version, like the reload loop."""

    def __init__(self, looks: LookQueue, config_dir: Path) -> None:
        self.looks = looks
        self.config_dir = config_dir
        self.seen: list[tuple[Look, str]] = []
        self._cursor = 0
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        while True:
            look = await self.looks.take()
            version = directory_version(self.config_dir)
            async with self._changed:
                self.seen.append((look, version))
                self._changed.notify_all()

    async def until(self, predicate: Callable[[Look, str], bool]) -> Look:
        """Wait for a look after the last one matched that satisfies ``predicate``."""
        found: list[Look] = []

        def satisfied() -> bool:
            for index in range(self._cursor, len(self.seen)):
                look, version = self.seen[index]
                if predicate(look, version):
                    found.append(look)
                    self._cursor = index + 1
                    return True
            return False

        async with asyncio.timeout(DEADLINE), self._changed:
            await self._changed.wait_for(satisfied)
        return found[0]

    async def until_version(self, version: str) -> Look:
        return await self.until(lambda _look, seen: seen == version)


@contextlib.asynccontextmanager
async def watching(
    config_dir: Path, mode: WatcherMode, *, rescan_interval: float = 30.0
) -> AsyncIterator[Reader]:
    looks = LookQueue()
    reader = Reader(looks, config_dir)
    async with Watching(
        config_dir, looks, mode=mode, poll_interval=POLL_INTERVAL, rescan_interval=rescan_interval
    ) as watcher:
        assert watcher.kind == mode
        task = asyncio.create_task(reader.run())
        try:
            yield reader
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "autobot"
    directory.mkdir()
    (directory / "config.yaml").write_bytes(BASE)
    return directory


@pytest.fixture(params=["inotify", "poll"])
def mode(request: pytest.FixtureRequest) -> WatcherMode:
    chosen: WatcherMode = request.param
    return chosen


async def run_tool(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(*argv)
    assert await process.wait() == 0, argv


class TestSavesAsToolsMakeThem:
    async def test_atomic_rename(self, config_dir: Path, mode: WatcherMode) -> None:
        async with watching(config_dir, mode) as reader:
            atomic_replace(config_dir / "config.yaml", CHANGED)

            await reader.until_version(version_of(config_yaml=CHANGED))

    async def test_vim_default_save_each_step(self, config_dir: Path, mode: WatcherMode) -> None:
        target = config_dir / "config.yaml"
        async with watching(config_dir, mode) as reader:
            vim_probe(config_dir)
            backup = vim_move_aside(target)
            await reader.until_version(version_of())

            write_in_place(target, CHANGED)
            await reader.until_version(version_of(config_yaml=CHANGED))

            backup.unlink()
            write_in_place(target, BASE)
            await reader.until_version(version_of(config_yaml=BASE))

    async def test_truncate_then_write_in_a_second_step(
        self, config_dir: Path, mode: WatcherMode
    ) -> None:
        target = config_dir / "config.yaml"
        async with watching(config_dir, mode) as reader:
            write_in_place(target, b"")
            await reader.until_version(version_of(config_yaml=b""))

            with open(target, "ab") as handle:
                handle.write(CHANGED)
            await reader.until_version(version_of(config_yaml=CHANGED))

    async def test_cp_over_the_file(
        self, config_dir: Path, mode: WatcherMode, tmp_path: Path
    ) -> None:
        source = tmp_path / "new-config.yaml"
        source.write_bytes(CHANGED)
        async with watching(config_dir, mode) as reader:
            await run_tool("cp", str(source), str(config_dir / "config.yaml"))

            await reader.until_version(version_of(config_yaml=CHANGED))

    async def test_sed_in_place(self, config_dir: Path, mode: WatcherMode) -> None:
        async with watching(config_dir, mode) as reader:
            await run_tool("sed", "-i", "s/8001/8002/", str(config_dir / "config.yaml"))

            await reader.until_version(version_of(config_yaml=CHANGED))

    async def test_touch_looks_and_reads_the_same_version(
        self, config_dir: Path, mode: WatcherMode
    ) -> None:
        async with watching(config_dir, mode) as reader:
            await run_tool("touch", str(config_dir / "config.yaml"))

            # A look comes (the file was opened for writing, its times moved), and
            # the content version says nothing changed.
            look = await reader.until(lambda _look, _version: True)
            assert directory_version(config_dir) == version_of(config_yaml=BASE)
            assert look.names == {"config.yaml"}

    async def test_settings_created_then_deleted(
        self, config_dir: Path, mode: WatcherMode
    ) -> None:
        async with watching(config_dir, mode) as reader:
            atomic_replace(config_dir / "settings.json", SETTINGS)
            await reader.until_version(version_of(config_yaml=BASE, settings_json=SETTINGS))

            (config_dir / "settings.json").unlink()
            look = await reader.until_version(version_of(config_yaml=BASE))
            assert "settings.json" in look.names

    async def test_editor_droppings_are_not_changes(
        self, config_dir: Path, mode: WatcherMode
    ) -> None:
        async with watching(config_dir, mode) as reader:
            for dropping in (".config.yaml.swp", "config.yaml~", "4913", "x.hotconf-tmp-1"):
                (config_dir / dropping).write_bytes(b"noise")
            (config_dir / ".hotconf").mkdir()
            (config_dir / ".hotconf" / "status.json").write_bytes(b"{}")
            atomic_replace(config_dir / "config.yaml", CHANGED)

            # Had any dropping counted, its name would have merged into this look.
            look = await reader.until_version(version_of(config_yaml=CHANGED))
            assert look.names == {"config.yaml"}


class TestDirectoryComesAndGoes:
    async def test_removed_and_recreated(self, config_dir: Path, mode: WatcherMode) -> None:
        async with watching(config_dir, mode) as reader:
            shutil.rmtree(config_dir)
            await reader.until_version(version_of())

            config_dir.mkdir()
            atomic_replace(config_dir / "config.yaml", CHANGED)
            await reader.until_version(version_of(config_yaml=CHANGED))

            # The new directory is watched, not just noticed once.
            atomic_replace(config_dir / "config.yaml", BASE)
            look = await reader.until_version(version_of(config_yaml=BASE))
            assert look.names == {"config.yaml"}

    async def test_moved_aside_and_replaced(
        self, config_dir: Path, mode: WatcherMode, tmp_path: Path
    ) -> None:
        replacement = tmp_path / "autobot.new"
        replacement.mkdir()
        (replacement / "config.yaml").write_bytes(CHANGED)
        async with watching(config_dir, mode) as reader:
            config_dir.rename(tmp_path / "autobot.old")
            replacement.rename(config_dir)
            await reader.until_version(version_of(config_yaml=CHANGED))

            atomic_replace(config_dir / "config.yaml", BASE)
            look = await reader.until_version(version_of(config_yaml=BASE))
            assert look.names == {"config.yaml"}

    async def test_parent_removed_too(self, tmp_path: Path) -> None:
        config_dir = tmp_path / "etc" / "autobot"
        config_dir.mkdir(parents=True)
        (config_dir / "config.yaml").write_bytes(BASE)
        async with watching(config_dir, "inotify") as reader:
            shutil.rmtree(tmp_path / "etc")
            await reader.until_version(version_of())

            config_dir.mkdir(parents=True)
            atomic_replace(config_dir / "config.yaml", CHANGED)
            await reader.until_version(version_of(config_yaml=CHANGED))

            # Watched by events again, not only noticed once when it came back.
            atomic_replace(config_dir / "config.yaml", BASE)
            look = await reader.until_version(version_of(config_yaml=BASE))
            assert look.names == {"config.yaml"}

    async def test_missing_at_start_is_watched_when_it_appears(self, tmp_path: Path) -> None:
        config_dir = tmp_path / "autobot"
        async with watching(config_dir, "inotify") as reader:
            config_dir.mkdir()
            atomic_replace(config_dir / "config.yaml", CHANGED)
            await reader.until_version(version_of(config_yaml=CHANGED))

            atomic_replace(config_dir / "config.yaml", BASE)
            look = await reader.until_version(version_of(config_yaml=BASE))
            assert look.names == {"config.yaml"}


class TestRescans:
    async def test_periodic_rescan_looks_without_events(self, config_dir: Path) -> None:
        async with watching(config_dir, "inotify", rescan_interval=0.05) as reader:
            look = await reader.until(lambda look, _version: RESCAN in look.reasons)

        assert look.names == frozenset()

    async def test_rescan_rearms_a_directory_swapped_behind_a_symlink(
        self, tmp_path: Path
    ) -> None:
        first, second = tmp_path / "v1", tmp_path / "v2"
        for directory, content in ((first, BASE), (second, CHANGED)):
            directory.mkdir()
            (directory / "config.yaml").write_bytes(content)
        link = tmp_path / "autobot"
        link.symlink_to(first)

        async with watching(link, "inotify", rescan_interval=0.05) as reader:
            (tmp_path / "autobot.next").symlink_to(second)
            os.replace(tmp_path / "autobot.next", link)
            await reader.until(lambda look, _version: DIRECTORY in look.reasons)

            atomic_replace(second / "config.yaml", SETTINGS)
            look = await reader.until(
                lambda look, version: INOTIFY in look.reasons
                and version == version_of(config_yaml=SETTINGS)
            )
            assert look.names == {"config.yaml"}

    async def test_queue_overflow_asks_for_a_rescan(self, config_dir: Path) -> None:
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        async with watching(config_dir, "inotify") as reader:
            # Without yielding to the loop nothing reads the queue; each round queues
            # three events (create, close-write, delete).
            dropping = config_dir / "burst.swp"
            for _ in range(limit // 3 + 100):
                dropping.write_bytes(b"")
                dropping.unlink()

            await reader.until(lambda look, _version: OVERFLOW in look.reasons)


class TestChoosing:
    async def test_auto_falls_back_to_polling_and_says_why(
        self, config_dir: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        looks = LookQueue()
        caplog.set_level(logging.WARNING, logger="agent.watcher")
        with no_new_file_descriptors():
            watcher = Watching(config_dir, looks, mode="auto", poll_interval=POLL_INTERVAL)
            await watcher.__aenter__()
        try:
            assert watcher.kind == "poll"
            assert "too many inotify instances" in watcher.why
            assert any(
                "falling back to polling" in record.getMessage()
                and "too many inotify instances" in record.getMessage()
                for record in caplog.records
            )

            # And polling really watches.
            reader = Reader(looks, config_dir)
            task = asyncio.create_task(reader.run())
            atomic_replace(config_dir / "config.yaml", CHANGED)
            await reader.until_version(version_of(config_yaml=CHANGED))
            task.cancel()
        finally:
            await watcher.aclose()

    async def test_inotify_asked_for_but_unavailable_is_an_error(self, config_dir: Path) -> None:
        watcher = Watching(config_dir, LookQueue(), mode="inotify")
        with pytest.raises(WatcherUnavailable) as raised, no_new_file_descriptors():
            await watcher.__aenter__()
        await watcher.aclose()

        message = str(raised.value)
        assert str(config_dir) in message
        assert "--watcher poll" in message

    def test_filesystem_type_finds_the_longest_mount(self, tmp_path: Path) -> None:
        mounts = tmp_path / "mounts"
        mounts.write_text(
            "/dev/vda / ext4 rw 0 0\n"
            f"server:/export {tmp_path} nfs4 rw 0 0\n"
            "tmpfs /dev/shm tmpfs rw 0 0\n"
        )

        assert filesystem_type(tmp_path / "autobot", mounts) == "nfs4"
        assert filesystem_type(Path("/usr"), mounts) == "ext4"


@contextlib.contextmanager
def no_new_file_descriptors() -> Iterator[None]:
    """Lower this process's open-file limit so that inotify_init1 fails with EMFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The kernel hands out the lowest free descriptor; a limit at it refuses any new one.
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def coarse_dir(tmp_path: Path) -> Iterator[Path]:
    with coarse_filesystem(tmp_path) as directory:
        yield directory


class TestPollingFingerprint:
    def test_same_size_writes_within_one_timestamp_tick(self, coarse_dir: Path) -> None:
        target = coarse_dir / "config.yaml"
        target.write_bytes(BASE)
        watcher = PollWatcher(coarse_dir, LookQueue(), interval=POLL_INTERVAL)
        watcher.arm()

        overwrite_same_size(target, CHANGED)
        first = os.stat(target)
        assert watcher.scan() == {"config.yaml"}

        # Same inode, size and (one-second) times: only the content hash can tell.
        overwrite_same_size(target, BASE)
        second = os.stat(target)
        if (first.st_mtime_ns, first.st_ctime_ns) != (second.st_mtime_ns, second.st_ctime_ns):
            pytest.skip("the second landed in the next second; the case did not arise")
        assert watcher.scan() == {"config.yaml"}
        assert watcher.scan() == frozenset()

    async def test_a_fifo_in_place_of_a_file_does_not_block_the_pass(self, tmp_path: Path) -> None:
        (tmp_path / "config.yaml").write_bytes(BASE)
        watcher = PollWatcher(tmp_path, LookQueue(), interval=POLL_INTERVAL)
        watcher.arm()
        fifo = tmp_path / "settings.json"
        os.mkfifo(fifo)

        scanning = asyncio.create_task(asyncio.to_thread(watcher.scan))
        done, _ = await asyncio.wait([scanning], timeout=DEADLINE)
        if not done:
            # Release the blocked open so the thread ends, then fail.
            with open(fifo, "wb"):
                pass
            await scanning
            pytest.fail("a polling pass blocked on a FIFO")
        assert scanning.result() == {"settings.json"}
