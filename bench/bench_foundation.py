"""Issue 2's figures: load, layer and validate; a 10,000-key config; the CLI process."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.timing import Figures, sample_ms
from hotconf.snapshot import load_snapshot

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"


def _synthetic(directory: Path, *, keys: int, unknown: bool) -> None:
    """The example plus ``keys`` more keys, nested 100 to a mapping.

    With ``unknown`` the keys sit under a section the schema does not know (each
    group one WARNING); otherwise under the free-form ``prompts`` section.
    """
    base = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    groups = {f"group_{g:03d}": {f"key_{k:03d}": f"value {g}.{k}" for k in range(100)}
              for g in range(keys // 100)}
    base["extra_section" if unknown else "prompts"] = groups
    (directory / "config.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    settings = {"ui": {"theme": "dark"}, "prompts": {"group_000": {"key_000": "changed"}}}
    (directory / "settings.json").write_text(json.dumps(settings, indent=2))


def run(figures: Figures) -> None:
    environ = {"AUTOBOT_BACKEND_PORT": "9000", "AUTOBOT_UI_THEME": "light"}
    samples = sample_ms(lambda: load_snapshot(EXAMPLE, environ), repeat=200)
    figures.add_median_ms("load, layer and validate the example (in process)", samples, 5)

    with tempfile.TemporaryDirectory() as work:
        synthetic = Path(work)
        _synthetic(synthetic, keys=10_000, unknown=False)
        samples = sample_ms(lambda: load_snapshot(synthetic, environ), repeat=20)
        figures.add_median_ms("10,000-key config (in process)", samples, 100)

        _synthetic(synthetic, keys=10_000, unknown=True)
        samples = sample_ms(lambda: load_snapshot(synthetic, environ), repeat=10)
        figures.add_median_ms("10,000 keys under an unknown section (in process)", samples)

    command = [sys.executable, "-m", "controller", "validate", "--config-dir", str(EXAMPLE)]

    def whole_process() -> None:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    samples = sample_ms(whole_process, repeat=15, warmup=2)
    figures.add_median_ms("`hotconf validate` as a whole process", samples, 300)

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    figures.add("  of which a bare Python start", (time.perf_counter() - started) * 1000, "ms")
