"""A real agent process, and changes made the way editors and tools make them.

Every case runs once with inotify and once with polling. A hook appends each applied
version to a log, so "one reload of the final content" and "no reload" are checked
by what the hook saw, in order, not by timing.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_process import (
    BROKEN,
    SETTINGS,
    VALID,
    VALID_2,
    VALID_3,
    HookLog,
    StartAgent,
    agents_started,
    config_version,
    valid_config,
    valid_config_dir,
)
from coarse_fs import coarse_filesystem
from editor_saves import atomic_replace, overwrite_same_size, vim_save, write_in_place

from hotconf.version import content_version

pytestmark = pytest.mark.integration

V1, V2 = config_version(VALID), config_version(VALID_2)
NOTHING = content_version({})


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return valid_config_dir(tmp_path)


@pytest.fixture
def hook_log(tmp_path: Path) -> HookLog:
    return HookLog(tmp_path)


@pytest.fixture
def start_agent(config_dir: Path) -> Iterator[StartAgent]:
    with agents_started(config_dir) as start:
        yield start


@pytest.fixture(params=["inotify", "poll"])
def watcher(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "poll":
        return ["--watcher", "poll", "--poll-interval", "0.05"]
    return ["--watcher", "inotify"]


def run_tool(*argv: str) -> None:
    subprocess.run(argv, check=True)


class TestEditorsAndTools:
    @pytest.mark.parametrize(
        "save",
        [
            pytest.param(lambda path, data: atomic_replace(path, data), id="atomic-rename"),
            pytest.param(lambda path, data: vim_save(path, data), id="vim"),
            pytest.param(lambda path, data: write_in_place(path, data), id="in-place"),
        ],
    )
    def test_a_save_applies_once(
        self,
        start_agent: StartAgent,
        config_dir: Path,
        watcher: list[str],
        hook_log: HookLog,
        save: Callable[[Path, bytes], None],
    ) -> None:
        agent = start_agent(*watcher, "--hook", hook_log.command)
        agent.wait_for_version(V1)

        save(config_dir / "config.yaml", VALID_2)

        agent.wait_for_version(V2)
        assert hook_log.entries() == [f"{V1} applied", f"{V2} applied"]

    def test_truncate_then_write_in_a_second_step(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        agent = start_agent(*watcher, "--hook", hook_log.command)
        agent.wait_for_version(V1)

        target = config_dir / "config.yaml"
        write_in_place(target, b"")
        with open(target, "ab") as handle:
            handle.write(VALID_2)

        agent.wait_for_version(V2)
        assert hook_log.entries() == [f"{V1} applied", f"{V2} applied"]

    def test_cp_over_the_file(
        self,
        start_agent: StartAgent,
        config_dir: Path,
        watcher: list[str],
        hook_log: HookLog,
        tmp_path: Path,
    ) -> None:
        source = tmp_path / "new.yaml"
        source.write_bytes(VALID_2)
        agent = start_agent(*watcher, "--hook", hook_log.command)
        agent.wait_for_version(V1)

        run_tool("cp", str(source), str(config_dir / "config.yaml"))

        agent.wait_for_version(V2)
        assert hook_log.entries() == [f"{V1} applied", f"{V2} applied"]

    def test_sed_in_place(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        agent = start_agent(*watcher, "--hook", hook_log.command)
        agent.wait_for_version(V1)

        run_tool("sed", "-i", "s/8001/8002/", str(config_dir / "config.yaml"))

        agent.wait_for_version(V2)
        assert hook_log.entries() == [f"{V1} applied", f"{V2} applied"]

    def test_touch_without_change_does_not_reload(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        agent = start_agent(
            *watcher, "--debounce", "0", "--log-level", "DEBUG", "--hook", hook_log.command
        )
        agent.wait_for_version(V1)

        run_tool("touch", str(config_dir / "config.yaml"))
        # The watcher noticed, and the reload loop found the version it already has.
        agent.wait_for_log(f"nothing new: version={V1}")
        atomic_replace(config_dir / "config.yaml", VALID_2)

        agent.wait_for_version(V2)
        assert hook_log.entries() == [f"{V1} applied", f"{V2} applied"]

    async def test_burst_of_50_writes_in_100ms_reloads_once_with_the_final_content(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        agent = start_agent(*watcher, "--hook", hook_log.command)
        await asyncio.to_thread(agent.wait_for_version, V1)

        for index in range(50):
            atomic_replace(config_dir / "config.yaml", valid_config(9000 + index))
            await asyncio.sleep(0.002)  # the burst's own pace: fifty writes in ~100 ms

        final = config_version(valid_config(9049))
        await asyncio.to_thread(agent.wait_for_version, final)
        assert hook_log.entries() == [f"{V1} applied", f"{final} applied"]


class TestRejection:
    def test_invalid_config_is_rejected_and_the_last_good_kept(
        self,
        start_agent: StartAgent,
        config_dir: Path,
        watcher: list[str],
        hook_log: HookLog,
        tmp_path: Path,
    ) -> None:
        rendered = tmp_path / "effective.json"
        agent = start_agent(*watcher, "--hook", hook_log.command, "--render", str(rendered))
        agent.wait_for_version(V1)
        served = rendered.read_bytes()

        atomic_replace(config_dir / "config.yaml", BROKEN)

        status = agent.wait_for_version(config_version(BROKEN), "rejected")
        assert status["serving"] == V1
        assert "not valid YAML" in status["summary"]["critical_findings"][0]
        assert hook_log.entries() == [f"{V1} applied"]
        assert rendered.read_bytes() == served
        assert (config_dir / ".hotconf" / "last-good" / "config.yaml").read_bytes() == VALID

        atomic_replace(config_dir / "config.yaml", VALID_2)
        agent.wait_for_version(V2)
        assert hook_log.entries() == [f"{V1} applied", f"{V2} applied"]

    def test_settings_deleted_is_a_change(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        (config_dir / "settings.json").write_bytes(SETTINGS)
        agent = start_agent(*watcher, "--hook", hook_log.command)
        with_settings = config_version(VALID, SETTINGS)
        agent.wait_for_version(with_settings)

        (config_dir / "settings.json").unlink()

        agent.wait_for_version(V1)
        assert hook_log.entries() == [f"{with_settings} applied", f"{V1} applied"]

    def test_config_deleted_is_rejected(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        agent = start_agent(*watcher, "--hook", hook_log.command)
        agent.wait_for_version(V1)

        (config_dir / "config.yaml").unlink()

        status = agent.wait_for_version(NOTHING, "rejected")
        assert status["serving"] == V1
        assert hook_log.entries() == [f"{V1} applied"]

    def test_a_managed_file_that_cannot_be_read_is_rejected_then_recovers(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        agent = start_agent(*watcher, "--hook", hook_log.command)
        agent.wait_for_version(V1)

        # Unreadable in place (a directory here; a file without permission alike).
        (config_dir / "settings.json").mkdir()

        status = agent.wait_for_status(lambda status: status["state"] == "rejected")
        assert status["serving"] == V1
        assert "settings.json is a directory" in status["summary"]["critical_findings"][0]
        assert "Traceback" not in agent.log()

        # The same bytes as before are readable again: that is a change back.
        (config_dir / "settings.json").rmdir()
        agent.wait_for_version(V1)
        assert hook_log.entries() == [f"{V1} applied", f"{V1} applied"]
        assert agent.process.poll() is None

    def test_directory_removed_and_recreated(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        agent = start_agent(*watcher, "--hook", hook_log.command)
        agent.wait_for_version(V1)

        shutil.rmtree(config_dir)
        agent.wait_for_log(f"version={NOTHING} state=rejected")
        config_dir.mkdir()
        atomic_replace(config_dir / "config.yaml", VALID_2)

        agent.wait_for_version(V2)
        assert hook_log.entries() == [f"{V1} applied", f"{V2} applied"]


class TestHotconfSync:
    def test_a_sync_is_one_reload_of_the_final_content_and_its_lock_no_change(
        self, start_agent: StartAgent, config_dir: Path, watcher: list[str], hook_log: HookLog
    ) -> None:
        (config_dir / "settings.json").write_bytes(b'{"backend": {"server_port": 8002}}\n')
        agent = start_agent(*watcher, "--hook", hook_log.command)
        before = agent.wait_for_status(lambda status: status["state"] == "applied")["version"]

        # The real command: lock file, backups, config.yaml, settings.json away, sync.json.
        run_tool(sys.executable, "-m", "controller", "sync", "-y", "--config-dir", str(config_dir))
        assert (config_dir / "config.yaml.lock").exists()
        assert (config_dir / ".hotconf" / "sync.json").exists()
        synced = content_version({"config.yaml": (config_dir / "config.yaml").read_bytes()})
        assert not (config_dir / "settings.json").exists()
        agent.wait_for_version(synced)

        # A sync with nothing to fold touches only its own files: no look, no report.
        run_tool(sys.executable, "-m", "controller", "sync", "-y", "--config-dir", str(config_dir))
        atomic_replace(config_dir / "config.yaml", VALID_3)
        v3 = config_version(VALID_3)
        agent.wait_for_version(v3)
        assert hook_log.entries() == [f"{before} applied", f"{synced} applied", f"{v3} applied"]
        assert agent.log().count("reload: version=") == 3


@pytest.fixture
def coarse_dir(tmp_path: Path) -> Iterator[Path]:
    with coarse_filesystem(tmp_path) as directory:
        yield directory


def test_polling_catches_two_same_size_writes_within_one_second(
    start_agent: StartAgent, coarse_dir: Path, hook_log: HookLog
) -> None:
    target = coarse_dir / "config.yaml"
    target.write_bytes(VALID)
    agent = start_agent(
        "--watcher", "poll", "--poll-interval", "0.02", "--debounce", "0",
        "--hook", hook_log.command, directory=coarse_dir,
    )
    agent.wait_for_version(V1)

    overwrite_same_size(target, VALID_2)
    agent.wait_for_version(V2)
    overwrite_same_size(target, VALID)
    agent.wait_for_version(V1)

    assert hook_log.entries() == [f"{V1} applied", f"{V2} applied", f"{V1} applied"]
