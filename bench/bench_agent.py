"""Issue 4's figures: how fast a change reaches the agent's report, and what idling costs.

- inotify, debounce 0: from a file's atomic rename to status.json renamed into place.
- polling every 0.5 s: the same; the pass lands anywhere in the interval.
- Redis fast path: files written, then from PUBLISH to the report read back from the
  stream (XREAD BLOCK), with the default debounce that only the message can cut short.
- idle: RSS, and CPU over a minute, of an agent polling at 0.5 s and of one on inotify
  (with Redis).

Every agent is a real ``hotconf-agent`` process; Redis is a real redis-server.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis
from inotify_simple import INotify, flags

from bench.timing import Figures
from hotconf.bus import RELOAD_CHANNEL, REPORTS_STREAM, ReloadMessage, encode_reload
from hotconf.version import content_version

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "tests"))

from agent_process import AgentProcess, valid_config  # noqa: E402
from editor_saves import atomic_replace  # noqa: E402
from support.redis_server import RedisServer  # noqa: E402

IDLE_SECONDS = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def run(figures: Figures) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as temp:
        work = Path(temp)
        _rename_to_status(figures, work / "inotify", ["--watcher", "inotify", "--debounce", "0"],
                          name="agent: atomic rename -> status.json, inotify, debounce 0",
                          repeat=40, target=15.0)
        _rename_to_status(figures, work / "poll",
                          ["--watcher", "poll", "--poll-interval", "0.5", "--debounce", "0"],
                          name="agent: atomic rename -> status.json, polling at 0.5 s",
                          repeat=12, target=520.0)
        with _redis(work / "redis") as url:
            _publish_to_report(figures, work / "fast", url)
            _idle(figures, work / "idle", url)


@contextmanager
def _redis(work: Path) -> Iterator[str]:
    server = RedisServer(work)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def _agent(config_dir: Path, args: list[str]) -> Iterator[AgentProcess]:
    config_dir.mkdir(parents=True)
    (config_dir / "config.yaml").write_bytes(valid_config(8000))
    (config_dir / ".hotconf").mkdir()
    agent = AgentProcess(config_dir, args)
    try:
        agent.wait_for_version(content_version({"config.yaml": valid_config(8000)}))
        yield agent
    finally:
        agent.stop()


def _rename_to_status(figures: Figures, config_dir: Path, args: list[str], *, name: str,
                      repeat: int, target: float) -> None:
    samples: list[float] = []
    with _agent(config_dir, args) as agent, INotify() as inotify:
        inotify.add_watch(config_dir / ".hotconf", flags.MOVED_TO)
        for index in range(1, repeat + 4):
            content = valid_config(8000 + index)
            started = time.perf_counter()
            atomic_replace(config_dir / "config.yaml", content)
            _wait_status(inotify, agent, content_version({"config.yaml": content}))
            if index > 3:  # the first few warm the agent's caches
                samples.append((time.perf_counter() - started) * 1000)
    figures.add_median_ms(name, samples, target=target)


def _wait_status(inotify: INotify, agent: AgentProcess, version: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for event in inotify.read(timeout=10_000):
            if event.name == "status.json":
                status = agent.status()
                if status is not None and status["version"] == version:
                    return
    raise RuntimeError(f"the agent never reported {version}:\n{agent.log()}")


def _publish_to_report(figures: Figures, config_dir: Path, url: str) -> None:
    client = redis.Redis.from_url(url)
    samples: list[float] = []
    with _agent(config_dir, ["--redis", url, "--debounce", "0.5"]) as agent:
        agent.wait_for_log("Redis connected")
        position = "$"
        for index in range(1, 24):
            content = valid_config(8100 + index)
            version = content_version({"config.yaml": content})
            atomic_replace(config_dir / "config.yaml", content)
            message = ReloadMessage(version=version, files=("config.yaml",), origin="bench")

            started = time.perf_counter()
            client.publish(RELOAD_CHANNEL, encode_reload(message))
            position = _wait_report(client, position, version)
            if index > 3:
                samples.append((time.perf_counter() - started) * 1000)
    client.close()
    figures.add_median_ms("agent: Redis publish -> report read back", samples, target=15.0)


def _wait_report(client: redis.Redis, position: str, version: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = client.xread({REPORTS_STREAM: position}, block=10_000)
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                position = entry_id.decode()
                if fields[b"version"].decode() == version:
                    return position
    raise RuntimeError(f"no report for {version} in the stream")


def _idle(figures: Figures, work: Path, url: str) -> None:
    with ExitStack() as stack:
        polling = stack.enter_context(
            _agent(work / "poll", ["--watcher", "poll", "--poll-interval", "0.5"])
        )
        watching = stack.enter_context(
            _agent(work / "inotify", ["--watcher", "inotify", "--redis", url])
        )
        watching.wait_for_log("Redis connected")
        before = {agent.pid: _cpu_seconds(agent.pid) for agent in (polling, watching)}
        time.sleep(IDLE_SECONDS)  # the measurement window: the agents idle meanwhile
        for label, agent in (("polling at 0.5 s", polling), ("inotify + Redis", watching)):
            used = _cpu_seconds(agent.pid) - before[agent.pid]
            figures.add(f"agent idle CPU over {IDLE_SECONDS:g} s, {label}",
                        used / IDLE_SECONDS * 100, "% core",
                        target=1.0 if "polling" in label else 0.1)
            figures.add(f"agent idle RSS, {label}", _rss_mb(agent.pid), "MB", target=40.0)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
