"""``make demo``: hotconf on the example configuration, good and broken.

Runs the real CLI as a user would, so what it prints is what they will see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"

BROKEN_CONFIG = """\
backend:
  server_port: 70000
  timeout: "sixty"
  cors_origins: [http://localhost:5173, localhost:3000]
memory:
  redis:
    port: 6379
    pasword: oops
ui:
  theme: dark
  theme: light
chat:
  max_messages: 5
"""


def _run(*args: str, env: dict[str, str] | None = None) -> int:
    print(f"\n$ hotconf {' '.join(args)}", flush=True)
    completed = subprocess.run([sys.executable, "-m", "controller", *args], env=env,
                               check=False)
    print(f"(exit {completed.returncode})", flush=True)
    return completed.returncode


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hotconf-demo-") as workdir:
        good = Path(workdir) / "autobot"
        shutil.copytree(EXAMPLE, good)
        broken = Path(workdir) / "broken"
        broken.mkdir()
        (broken / "config.yaml").write_text(BROKEN_CONFIG)

        env = {**os.environ, "AUTOBOT_BACKEND_PORT": "9000", "AUTOBOT_REDIS_PASSWORD": "s3cret"}
        print("== the example configuration, with two environment overrides")
        _run("validate", "--config-dir", str(good), env=env)
        _run("explain", "backend.server_port", "--config-dir", str(good), env=env)
        _run("explain", "ui.theme", "--config-dir", str(good), env=env)
        _run("show", "--config-dir", str(good), env=env)

        print("\n== a broken configuration")
        _run("validate", "--config-dir", str(broken))
    return 0


if __name__ == "__main__":
    sys.exit(main())
