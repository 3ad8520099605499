"""Which agent reports answer a push: decided without comparing any clocks."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from controller.inventory import Host
from controller.reports import ReportCollector
from controller.targets import LocalTarget

VERSION = "0123456789ab"


def _target(tmp_path: Path, name: str = "vm1") -> LocalTarget:
    config_dir = tmp_path / name
    (config_dir / ".hotconf").mkdir(parents=True)
    return LocalTarget(Host(name, "127.0.0.1", connection="local", config_dir=config_dir))


def _write_status(target: LocalTarget, *, version: str, ts: float) -> None:
    status = {"host": target.host.name, "version": version, "state": "applied",
              "summary": {}, "ts": ts}
    (target.config_dir / ".hotconf" / "status.json").write_text(json.dumps(status))


def test_a_report_from_an_agent_whose_clock_is_an_hour_behind_still_answers(
        tmp_path: Path) -> None:
    target = _target(tmp_path)
    _write_status(target, version="ffffffffffff", ts=time.time() - 7200)
    before = {"vm1": time.time() - 7200}

    async def agent_answers_late() -> dict:
        async def answer() -> None:
            await asyncio.sleep(0.05)
            _write_status(target, version=VERSION, ts=time.time() - 3600)

        writer = asyncio.create_task(answer())
        found = await ReportCollector(None, None).wait({"vm1": target}, VERSION, before, 5.0)
        await writer
        return found

    found = asyncio.run(agent_answers_late())
    assert found["vm1"].version == VERSION


def test_the_report_read_before_the_push_is_not_an_answer(tmp_path: Path) -> None:
    target = _target(tmp_path)
    stamp = time.time() - 10
    # V, then W, then V again: the agent's last word is about V, but from before.
    _write_status(target, version=VERSION, ts=stamp)

    found = asyncio.run(ReportCollector(None, None).wait({"vm1": target}, VERSION,
                                                         {"vm1": stamp}, 0.3))
    assert found == {}
