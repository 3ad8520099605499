"""Eight processes syncing, rolling back and editing one config dir at once."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from hotconf.backups import BackupStore
from hotconf.snapshot import load_snapshot
from hotconf.version import content_version, directory_version

TESTS = Path(__file__).resolve().parent
EXAMPLE = TESTS.parent / "examples" / "autobot"
HELPER_ENV = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
ROLES = ("sync", "sync", "sync", "rollback", "rollback", "edit", "edit", "edit")
ROUNDS = 6


def test_concurrent_sync_rollback_and_edits_serialize(tmp_path: Path) -> None:
    config_dir = tmp_path / "autobot"
    shutil.copytree(EXAMPLE, config_dir)
    log = tmp_path / "operations.jsonl"
    # One earlier generation, so rollbacks have somewhere to go from the first moment.
    BackupStore(config_dir).take(reason="initial")
    (config_dir / "settings.json").write_text('{"ui": {"theme": "light"}}\n')
    initial = directory_version(config_dir)

    workers = [
        subprocess.Popen(
            [sys.executable, str(TESTS / "sync_worker.py"), role, str(config_dir), str(log),
             str(ROUNDS), str(seed)],
            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=HELPER_ENV,
        )
        for seed, role in enumerate(ROLES)
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        _, errors = worker.communicate(timeout=55)
        assert worker.returncode == 0, errors

    # In lock order, each operation starts from the state the previous one left.
    operations = sorted((json.loads(line) for line in log.read_text().splitlines()),
                        key=lambda operation: operation["at"])
    assert {operation["role"] for operation in operations} == {"sync", "rollback", "edit"}
    times = [operation["at"] for operation in operations]
    assert len(set(times)) == len(times)
    state = initial
    for operation in operations:
        assert operation["before"] == state, operation
        state = operation["after"]
    assert directory_version(config_dir) == state
    assert not load_snapshot(config_dir, {}).report.critical

    # Every generation is whole, names its own content, and none repeats its neighbour.
    store = BackupStore(config_dir)
    generations = store.generations()
    assert len(generations) >= sum(operation["role"] != "edit" for operation in operations)
    assert len({generation.id for generation in generations}) == len(generations)
    for generation in generations:
        assert content_version(store.read(generation)) == generation.version
    for newer, older in itertools.pairwise(generations):
        assert newer.version != older.version
    manifests = {generation.id for generation in generations}
    stray = [entry for entry in os.listdir(store.directory)
             if (found := re.search(r"\d{8}T\d{6}\.\d{6}Z\.[0-9a-f]{12}", entry))
             and found.group(0) not in manifests]
    assert stray == []
    assert [entry for entry in os.listdir(config_dir) if "hotconf-tmp" in entry] == []
