"""Kill atomic writers at random moments and report what a reader saw after each kill.

Run by tests/test_atomic.py as ``python tests/crash_writer.py DIR ROUNDS SEED``. One
process forks ROUNDS writers (forking keeps 200 rounds within a second or two); each
writer rewrites DIR/config.yaml with the old and the new content in a loop until it is
killed with SIGKILL after a random delay. After each kill the driver records the file's
bytes, whether they parse, and the temp files left; then it makes the next write itself
and records the temp files still there. One JSON object on stdout carries the record.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from hotconf.atomic import TEMP_MARKER, atomic_write


def yaml_document(label: str, entries: int) -> bytes:
    """A YAML mapping big enough that a kill often lands mid-write."""
    lines = [f"# written by crash_writer: {label}", "backend:", f"  label: {label}"]
    lines += [f"  key_{index:05d}: value-{label}-{index:05d}" for index in range(entries)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def temps_in(directory: Path) -> list[str]:
    return sorted(entry for entry in os.listdir(directory) if TEMP_MARKER in entry)


def run_writer(target: Path, contents: tuple[bytes, bytes], ready_fd: int) -> None:
    """The child: say it runs, then write old and new content until killed."""
    os.write(ready_fd, b"r")
    os.close(ready_fd)
    while True:
        for data in contents:
            atomic_write(target, data)


@dataclass
class Record:
    rounds: int = 0
    saw_old: int = 0
    saw_new: int = 0
    bad_content: list[int] = field(default_factory=list)
    unparsable: int = 0
    kills_with_temp_left: int = 0
    temps_after_next_write: list[str] = field(default_factory=list)


def main(directory: Path, rounds: int, seed: int) -> Record:
    chooser = random.Random(seed)
    target = directory / "config.yaml"
    old, new = yaml_document("old", 400), yaml_document("new", 400)
    atomic_write(target, old)
    record = Record()

    for round_number in range(rounds):
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_read)
            try:
                run_writer(target, (new, old), ready_write)
            finally:
                os._exit(1)
        os.close(ready_write)
        os.read(ready_read, 1)
        os.close(ready_read)

        # Kill somewhere across create, write, fsync, rename and the directory fsync.
        time.sleep(chooser.uniform(0.0, 0.003))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        seen = target.read_bytes()
        if seen == old:
            record.saw_old += 1
        elif seen == new:
            record.saw_new += 1
        else:
            record.bad_content.append(round_number)
        try:
            yaml.load(seen, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            record.unparsable += 1
        if temps_in(directory):
            record.kills_with_temp_left += 1

        # The next write must sweep what the killed writer left.
        atomic_write(target, seen if seen in (old, new) else old)
        record.temps_after_next_write += temps_in(directory)
        record.rounds = round_number + 1
    return record


if __name__ == "__main__":
    result = main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps(asdict(result)))
