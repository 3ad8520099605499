"""``make demo``: the whole job on a fleet built on this machine, in under 30 seconds.

A main host and five VMs: the VMs' sshd are embedded asyncssh servers (this machine
needs no sshd), each machine runs a real ``hotconf-agent``, and Redis carries the fast
path when ``redis-server`` is installed (otherwise the push reads the agents' reports
over SFTP, and the demo says so). Every step runs the real ``hotconf`` command, so
what it prints is what an operator sees.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from controller.demo_fleet import FleetLayout, embedded_fleet

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"
MAIN_HOST = "main"
VMS = ("vm1", "vm2", "vm3", "vm4", "vm5")
READY_TIMEOUT_S = 15.0


def _say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def _hotconf(*args: str, env: dict[str, str]) -> int:
    print(f"\n$ hotconf {' '.join(args)}", flush=True)
    completed = subprocess.run([sys.executable, "-m", "controller", *args], env=env,
                               check=False)
    print(f"(exit {completed.returncode})", flush=True)
    return completed.returncode


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _redis(workdir: Path) -> Iterator[str | None]:
    """A private redis-server on a free port, or None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = _free_port()
    log = (workdir / "redis.log").open("wb")
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
         "no", "--dir", str(workdir)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=5)
        log.close()


def _start_agents(layout: FleetLayout, redis_url: str | None,
                  stack: ExitStack) -> dict[str, subprocess.Popen[bytes]]:
    agents = {}
    for name in layout.hosts:
        argv = [sys.executable, "-m", "agent", "run", "--config-dir",
                str(layout.config_dir(name)), "--host-id", name, "--debounce", "0.05"]
        if redis_url:
            argv += ["--redis", redis_url]
        log = (layout.root / f"agent-{name}.log").open("wb")
        stack.callback(log.close)
        agents[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(_stop_agents, agents)

    deadline = time.monotonic() + READY_TIMEOUT_S
    for name in layout.hosts:
        status = layout.config_dir(name) / ".hotconf" / "status.json"
        while not status.exists():
            if agents[name].poll() is not None or time.monotonic() > deadline:
                log_text = (layout.root / f"agent-{name}.log").read_text()
                raise SystemExit(f"demo: the agent of {name} did not start:\n{log_text}")
            time.sleep(0.02)
    return agents


def _stop_agents(agents: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in agents.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in agents.values():
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def _seed(layout: FleetLayout) -> None:
    """Yesterday's fleet: every machine runs the example, the VMs without today's GUI edits."""
    for name in layout.hosts:
        target = layout.config_dir(name)
        for service_dir in ("data", "logs"):
            (target / service_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE / "config.yaml", target / "config.yaml")
    shutil.copy(EXAMPLE / "settings.json", layout.config_dir(MAIN_HOST) / "settings.json")


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hotconf-demo-") as workdir, ExitStack() as stack:
        root = Path(workdir)
        layout = FleetLayout(root, MAIN_HOST, VMS)
        _seed(layout)
        redis_url = stack.enter_context(_redis(root))
        stack.enter_context(embedded_fleet(layout, redis_url=redis_url))

        _say(f"a main host and {len(VMS)} VMs on this machine "
             f"(SSH: embedded asyncssh servers; Redis: "
             f"{redis_url or 'not installed, so reports are read back over SFTP'})")
        _start_agents(layout, redis_url, stack)
        print(f"agents running on {', '.join(layout.hosts)}")

        main_dir = layout.config_dir(MAIN_HOST)
        env = {**os.environ, "HOTCONF_CONFIG_DIR": str(main_dir),
               "HOTCONF_INVENTORY": str(layout.inventory)}

        _say("1. validate the main host's configuration")
        _hotconf("validate", env=env)

        _say("2. push it: the VMs lack today's settings.json")
        _hotconf("push", env=env)
        _hotconf("status", env=env)

        _say("3. the GUI changes a setting; sync it into the base file and push again")
        settings_path = main_dir / "settings.json"
        settings = json.loads(settings_path.read_text())
        settings.setdefault("chat", {})["max_messages"] = 500
        settings_path.write_text(json.dumps(settings, indent=2) + "\n")
        _hotconf("explain", "chat.max_messages", env=env)
        _hotconf("sync", "--yes", env=env)
        _hotconf("push", env=env)

        _say("4. a broken config.yaml (the logging section lost): refused here ...")
        config_path = main_dir / "config.yaml"
        good = config_path.read_text()
        config_path.write_text(good.replace("\nlogging:", "\nlogging_typo:"))
        _hotconf("push", env=env)
        _say("... and pushed anyway with --force: every agent rejects it and keeps serving "
             "its last good version")
        _hotconf("push", "--force", "--limit", "vms", env=env)
        _hotconf("status", "--limit", "vms", env=env)

        _say("5. fix it and converge")
        config_path.write_text(good)
        _hotconf("push", env=env)

        _say(f"done in {time.monotonic() - started:.1f}s; stopping the agents, SSH servers"
             f"{' and Redis' if redis_url else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
