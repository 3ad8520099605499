"""Debounce: quiet period, maximum wait, urgent looks, and no latency at zero."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from editor_saves import atomic_replace

from agent.debounce import Debouncer
from agent.looks import INOTIFY, POLL, REDIS, RESCAN, Look, LookQueue
from agent.watcher import WatcherMode, Watching
from hotconf.version import content_version, directory_version

DEADLINE = 10.0


class TestLookQueue:
    def test_signals_merge_while_unread(self) -> None:
        looks = LookQueue()
        looks.put(Look.of(INOTIFY, ["config.yaml"]))
        looks.put(Look.of(RESCAN))
        looks.put(Look.of(INOTIFY, ["settings.json"]))

        merged = looks.take_nowait()

        assert merged == Look(
            frozenset({INOTIFY, RESCAN}), frozenset({"config.yaml", "settings.json"})
        )
        assert looks.take_nowait() is None

    def test_describe_names_what_was_seen(self) -> None:
        look = Look.of(INOTIFY, ["settings.json", "config.yaml"]).merged(Look.of(RESCAN))

        assert look.describe() == "inotify(config.yaml,settings.json)+rescan"


class TestDebouncer:
    async def test_zero_quiet_period_hands_on_without_suspending(self) -> None:
        looks = LookQueue()
        debouncer = Debouncer(looks, quiet=0)
        looks.put(Look.of(POLL, ["config.yaml"]))

        # Driving the coroutine by hand: it finishes on its first step, so it never
        # waited on a timer or yielded to the loop.
        step = debouncer.settled()
        with pytest.raises(StopIteration) as finished:
            step.send(None)

        assert finished.value.value == Look.of(POLL, ["config.yaml"])

    async def test_a_burst_settles_into_one_look(self) -> None:
        looks = LookQueue()
        debouncer = Debouncer(looks, quiet=0.3, max_wait=30)
        burst_over = asyncio.Event()

        async def burst() -> None:
            for index in range(20):
                looks.put(Look.of(INOTIFY, [f"file-{index}"]))
                await asyncio.sleep(0.005)  # the burst's own pace, well inside the quiet period
            burst_over.set()

        async with asyncio.timeout(DEADLINE), asyncio.TaskGroup() as tasks:
            tasks.create_task(burst())
            look = await debouncer.settled()

        assert burst_over.is_set()
        assert look.names == {f"file-{index}" for index in range(20)}
        assert not looks.pending()

    async def test_maximum_wait_ends_an_endless_burst(self) -> None:
        looks = LookQueue()
        debouncer = Debouncer(looks, quiet=0.2, max_wait=0.5)

        async def forever() -> None:
            while True:
                looks.put(Look.of(INOTIFY, ["config.yaml"]))
                await asyncio.sleep(0.02)  # always well inside the quiet period

        writer = asyncio.create_task(forever())
        try:
            async with asyncio.timeout(DEADLINE):
                look = await debouncer.settled()
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

        assert look.names == {"config.yaml"}

    async def test_an_urgent_look_ends_the_wait(self) -> None:
        looks = LookQueue()
        debouncer = Debouncer(looks, quiet=3600, max_wait=3600)
        looks.put(Look.of(INOTIFY, ["config.yaml"]))

        waiting = asyncio.create_task(debouncer.settled())
        await asyncio.sleep(0)
        assert not waiting.done()
        looks.put(Look.of(REDIS, urgent=True))

        async with asyncio.timeout(DEADLINE):
            look = await waiting
        assert look.reasons == {INOTIFY, REDIS}

    async def test_an_urgent_look_needs_no_wait_at_all(self) -> None:
        looks = LookQueue()
        debouncer = Debouncer(looks, quiet=3600)
        looks.put(Look.of(REDIS, urgent=True))

        step = debouncer.settled()
        with pytest.raises(StopIteration):
            step.send(None)

    @pytest.mark.parametrize(("quiet", "max_wait"), [(-1, 5), (0.5, -1)])
    def test_negative_periods_are_refused(self, quiet: float, max_wait: float) -> None:
        with pytest.raises(ValueError, match="0 or more seconds"):
            Debouncer(LookQueue(), quiet=quiet, max_wait=max_wait)


@contextlib.asynccontextmanager
async def debounced_watching(
    config_dir: Path, looks: LookQueue, mode: WatcherMode
) -> AsyncIterator[Debouncer]:
    async with Watching(config_dir, looks, mode=mode, poll_interval=0.05):
        yield Debouncer(looks, quiet=0.5, max_wait=30)


@pytest.mark.parametrize("mode", ["inotify", "poll"])
async def test_fifty_writes_in_100ms_give_one_look_of_the_final_content(
    tmp_path: Path, mode: WatcherMode
) -> None:
    config_dir = tmp_path / "autobot"
    config_dir.mkdir()
    target = config_dir / "config.yaml"
    target.write_bytes(b"backend:\n  server_port: 8000\n")
    final = b"backend:\n  server_port: 8049\n"
    burst_over = asyncio.Event()
    looks = LookQueue()

    async def burst() -> None:
        for index in range(50):
            atomic_replace(target, f"backend:\n  server_port: {8000 + index}\n".encode())
            await asyncio.sleep(0.002)  # fifty writes spread over about 100 ms
        burst_over.set()

    async with debounced_watching(config_dir, looks, mode) as debouncer, asyncio.timeout(DEADLINE):
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(burst())
            look = await debouncer.settled()
        version = directory_version(config_dir)

        assert burst_over.is_set()
        assert look.names == {"config.yaml"}
        assert version == content_version({"config.yaml": final})
        assert not looks.pending()
