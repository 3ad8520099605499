"""Issue 5's figures: a push to 5 and to 20 hosts until every agent reported applied.

The fleet is real: one OpenSSH sshd per host on a loopback port, one hotconf-agent
per host (debounce 0), and redis-server for the reports. "Fresh connections": each
push opens its own SSH connections, as an operator's run does.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.timing import Figures, sample_ms
from controller.inventory import load_inventory
from controller.push import PushOptions, PushRun

REPOSITORY = Path(__file__).resolve().parent.parent
EXAMPLE = REPOSITORY / "examples" / "autobot"
sys.path.insert(0, str(REPOSITORY / "tests"))

from agent_process import AgentProcess  # noqa: E402
from support.redis_server import RedisServer  # noqa: E402
from support.sshd import SshClientKey, SshFleet, generate_ed25519_key, privsep_dir  # noqa: E402


@contextmanager
def _fleet(work: Path, count: int) -> Iterator[tuple[Path, Path, str]]:
    """Start ``count`` sshd + agents and redis; yield (inventory, source dir, redis url)."""
    with ExitStack() as stack:
        stack.enter_context(privsep_dir())
        redis = RedisServer(work / "redis")
        redis.start()
        stack.callback(redis.stop)

        key_path = work / "client" / "id_ed25519"
        key_path.parent.mkdir()
        key = SshClientKey(key_path, generate_ed25519_key(key_path, getpass.getuser()))
        fleet = SshFleet(work / "fleet", key, [f"vm{index:02d}" for index in range(1, count + 1)])
        fleet.start()
        stack.callback(fleet.stop)

        source = work / "main"
        source.mkdir()
        (source / "config.yaml").write_bytes((EXAMPLE / "config.yaml").read_bytes())
        for host in fleet:
            (host.config_dir / "config.yaml").write_bytes((EXAMPLE / "config.yaml").read_bytes())
        inventory = fleet.write_inventory(work / "inventory.yaml", redis_url=redis.url)

        agents = [AgentProcess(host.config_dir, ["--host-id", host.name, "--debounce", "0",
                                                 "--redis", redis.url]) for host in fleet]
        for agent in agents:
            stack.callback(agent.stop)
        for agent in agents:
            agent.wait_for_log("Redis connected")
        yield inventory, source, redis.url


class _Toggle:
    """Alternates settings.json between two contents, so every push changes something."""

    def __init__(self, source: Path) -> None:
        self.path = source / "settings.json"
        self.turn = 0

    def __call__(self) -> None:
        self.turn += 1
        self.path.write_text(json.dumps({"chat": {"max_messages": 100 + self.turn % 2}}))


def _measure(figures: Figures, work: Path, count: int, *, in_process_target: float,
             process_target: float, unchanged_target: float | None, repeat: int) -> None:
    with _fleet(work, count) as (inventory_path, source, redis_url):
        hosts = load_inventory(inventory_path).hosts
        options = PushOptions(config_dir=source, redis_url=redis_url, timeout=10.0)
        toggle = _Toggle(source)

        def push_in_process() -> None:
            toggle()
            result = asyncio.run(PushRun(hosts, options).run())
            assert result.succeeded, result.to_dict()

        samples = sample_ms(push_in_process, repeat=repeat, warmup=2)
        figures.add_median_ms(f"push to {count} hosts until all applied (in process)", samples,
                              in_process_target)

        command = [sys.executable, "-m", "controller", "push", "-i", str(inventory_path),
                   "--config-dir", str(source)]

        def push_process() -> None:
            toggle()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

        samples = sample_ms(push_process, repeat=max(repeat // 2, 5), warmup=1)
        figures.add_median_ms(f"`hotconf push` to {count} hosts as a whole process", samples,
                              process_target)

        if unchanged_target is not None:
            def push_unchanged() -> None:
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

            samples = sample_ms(push_unchanged, repeat=max(repeat // 2, 5), warmup=1)
            figures.add_median_ms(f"`hotconf push` to {count} hosts, nothing changed", samples,
                                  unchanged_target)


def run(figures: Figures) -> None:
    with tempfile.TemporaryDirectory() as work:
        _measure(figures, Path(work) / "five", 5, in_process_target=250, process_target=500,
                 unchanged_target=400, repeat=15)
        _measure(figures, Path(work) / "twenty", 20, in_process_target=450,
                 process_target=800, unchanged_target=None, repeat=10)
