"""File primitives: atomic write, lock round trip, backup generation (with fsyncs)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.timing import Figures, sample_ms
from hotconf.atomic import atomic_write
from hotconf.backups import BackupStore
from hotconf.locking import FileLock

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot" / "config.yaml"


def _base_bytes() -> bytes:
    if EXAMPLE.is_file():
        return EXAMPLE.read_bytes()
    return b"backend:\n" + b"".join(b"  key_%03d: value\n" % index for index in range(200))


def run(figures: Figures) -> None:
    data = _base_bytes()
    with tempfile.TemporaryDirectory(prefix="hotconf-bench-") as scratch:
        config_dir = Path(scratch)
        target = config_dir / "config.yaml"
        atomic_write(target, data)

        samples = sample_ms(lambda: atomic_write(target, data), repeat=50)
        figures.add_median_ms(f"atomic write of config.yaml ({len(data)} B)", samples)

        def lock_round_trip() -> None:
            with FileLock(target):
                pass

        samples = sample_ms(lock_round_trip, repeat=200)
        figures.add_median_ms("lock acquire and release, uncontended", samples)

        store = BackupStore(config_dir, keep=20)
        counter = iter(range(10**6))

        def take_and_prune() -> None:
            # A new byte each round, so every take writes a generation.
            atomic_write(target, data + b"# %d\n" % next(counter))
            store.take(reason="bench")
            store.prune()

        samples = sample_ms(take_and_prune, repeat=50)
        figures.add_median_ms("write + backup generation + prune (keep 20)", samples)
