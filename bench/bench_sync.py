"""Sync-to-base of the example configuration, in process: fold, validate, back up, write."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench.timing import Figures
from controller.sync import plan_sync, sync_to_base
from hotconf.version import MANAGED_FILES

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"
ROUNDS = 40
WARMUP = 3


def _restore(config_dir: Path) -> None:
    for name in MANAGED_FILES:
        shutil.copyfile(EXAMPLE / name, config_dir / name)


def run(figures: Figures) -> None:
    with tempfile.TemporaryDirectory(prefix="hotconf-bench-") as scratch:
        config_dir = Path(scratch) / "autobot"
        shutil.copytree(EXAMPLE, config_dir)

        # Each round starts from the example's two files; only the sync is timed.
        samples: list[float] = []
        for round_number in range(WARMUP + ROUNDS):
            _restore(config_dir)
            started = time.perf_counter()
            result = sync_to_base(config_dir)
            elapsed = (time.perf_counter() - started) * 1000
            assert result.status == "synced", result.message
            if round_number >= WARMUP:
                samples.append(elapsed)
        figures.add_median_ms("sync of examples/autobot (lock, fold, validate, backup, write)",
                              samples, target=20)

        # A key settings.json adds needs the ruamel.yaml round trip, not a line edit.
        adding = b'{"backend": {"llm": {"openai": {"api_key": "sk-bench"}}}}\n'
        structural: list[float] = []
        for _ in range(ROUNDS):
            _restore(config_dir)
            (config_dir / "settings.json").write_bytes(adding)
            started = time.perf_counter()
            result = sync_to_base(config_dir)
            structural.append((time.perf_counter() - started) * 1000)
            assert result.status == "synced", result.message
        figures.add_median_ms("sync adding a key (ruamel.yaml round trip)", structural)

        planned: list[float] = []
        _restore(config_dir)
        for _ in range(ROUNDS):
            started = time.perf_counter()
            plan_sync(config_dir)
            planned.append((time.perf_counter() - started) * 1000)
        figures.add_median_ms("sync --dry-run of examples/autobot (fold, validate, diff)",
                              planned)
