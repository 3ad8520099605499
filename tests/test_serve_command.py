"""``hotconf serve`` as a process: token sources, what it logs, refusals, stopping."""

from __future__ import annotations

import os
import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_server import ServeProcess

REPO = Path(__file__).resolve().parent.parent
TOKEN = "serve-test-token-0123456789abcdef"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "autobot"
    shutil.copytree(REPO / "examples" / "autobot", target)
    return target


@pytest.fixture
def environment() -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items()
            if not name.startswith(("HOTCONF_", "AUTOBOT"))}
    return {**kept, "PYTHONPATH": str(REPO)}


@pytest.fixture
def started() -> Iterator[list[ServeProcess]]:
    processes: list[ServeProcess] = []
    yield processes
    for process in processes:
        process.stop()


def serve(started: list[ServeProcess], args: list[str], env: dict[str, str]) -> ServeProcess:
    process = ServeProcess(args, env)
    started.append(process)
    return process


def test_generated_token_is_logged_by_path_never_by_value(
    config_dir: Path, environment: dict[str, str], started: list[ServeProcess]
) -> None:
    process = serve(started, ["--port", "0", "--config-dir", str(config_dir)], environment)
    url = process.wait_for_line(r"api listening url=(\S+)").group(1)

    token_file = config_dir / ".hotconf" / "api-token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert str(token_file) in process.text()
    answer = httpx.get(f"{url}/api/config/validate",
                       headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert httpx.get(f"{url}/api/config/validate").status_code == 401

    assert process.stop() == 0
    assert token not in process.text()
    assert "api stopped" in process.text()


def test_environment_token_is_used(
    config_dir: Path, environment: dict[str, str], started: list[ServeProcess]
) -> None:
    environment["HOTCONF_API_TOKEN"] = TOKEN
    process = serve(started, ["--port", "0", "--config-dir", str(config_dir)], environment)
    url = process.wait_for_line(r"api listening url=(\S+)").group(1)

    answer = httpx.get(f"{url}/healthz")
    authorized = httpx.get(f"{url}/api/settings/sync-status",
                           headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 200
    assert authorized.status_code == 200
    assert "token_source=environment" in process.text()
    assert not (config_dir / ".hotconf" / "api-token").exists()


def test_public_bind_without_an_explicit_token_is_refused(
    config_dir: Path, environment: dict[str, str], started: list[ServeProcess]
) -> None:
    process = serve(started, ["--host", "0.0.0.0", "--port", "0",
                              "--config-dir", str(config_dir)], environment)

    assert process.wait_exit() == 2
    assert "refusing to listen on 0.0.0.0" in process.text()
    assert "--token-file" in process.text()
    assert "api listening" not in process.text()
    # Refused before a token was made: a refused start leaves nothing behind.
    assert not (config_dir / ".hotconf" / "api-token").exists()


def test_token_file_readable_by_others_is_refused(
    tmp_path: Path, config_dir: Path, environment: dict[str, str], started: list[ServeProcess]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)

    process = serve(started, ["--port", "0", "--config-dir", str(config_dir),
                              "--token-file", str(token_file)], environment)

    assert process.wait_exit() == 2
    assert f"chmod 600 {token_file}" in process.text()
    assert TOKEN not in process.text()


def test_busy_port_is_one_clear_line(
    config_dir: Path, environment: dict[str, str], started: list[ServeProcess]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        environment["HOTCONF_API_TOKEN"] = TOKEN

        process = serve(started, ["--port", str(port), "--config-dir", str(config_dir)],
                        environment)

        assert process.wait_exit() == 1
    assert f"cannot listen on 127.0.0.1:{port}" in process.text()
    assert "Traceback" not in process.text()


def test_inventory_option_serves_the_fleet_status(
    tmp_path: Path, config_dir: Path, environment: dict[str, str], started: list[ServeProcess]
) -> None:
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text(
        f"all:\n  hosts:\n    main: {{connection: local, config_dir: {config_dir}}}\n"
    )
    environment["HOTCONF_API_TOKEN"] = TOKEN
    process = serve(started, ["--port", "0", "--config-dir", str(config_dir),
                              "-i", str(inventory)], environment)
    url = process.wait_for_line(r"api listening url=(\S+)").group(1)

    answer = httpx.get(f"{url}/api/fleet/status", headers={"Authorization": f"Bearer {TOKEN}"},
                       timeout=30)

    assert answer.status_code == 200
    assert [row["host"] for row in answer.json()["hosts"]] == ["main"]
