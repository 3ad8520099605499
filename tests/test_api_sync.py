"""The settings routes against a real uvicorn: sync-to-base and sync-status.

Each outcome of a sync has its answer (200, 409, 423, 429), two syncs at once never
tear config.yaml, and the answers carry no secret.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from api_server import serving
from click.testing import CliRunner

from controller.api import ApiSettings, create_app
from controller.api_token import ApiToken
from controller.cli import main

TESTS = Path(__file__).resolve().parent
EXAMPLE = TESTS.parent / "examples" / "autobot"
TOKEN = "sync-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SYNC = "/api/settings/sync-to-base"
STATUS = "/api/settings/sync-status"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "autobot"
    shutil.copytree(EXAMPLE, target)
    return target


def app_for(config_dir: Path, **overrides: object) -> object:
    values: dict[str, object] = {
        "config_dir": config_dir,
        "token": ApiToken(TOKEN, "environment"),
        "environ": {},
        "lock_timeout_s": 5.0,
    }
    values.update(overrides)
    return create_app(ApiSettings(**values))  # type: ignore[arg-type]


@pytest.fixture
def api(config_dir: Path) -> Iterator[httpx.Client]:
    with serving(app_for(config_dir)) as url, \
            httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield client


def files_of(config_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in config_dir.iterdir() if path.is_file()}


class TestSync:
    def test_sync_folds_settings_into_the_base(self, config_dir: Path, api: httpx.Client) -> None:
        answer = api.post(SYNC)

        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "synced"
        assert body["backup"]["id"]
        assert body["validation_summary"]["critical"] == 0
        assert body["version_before"] != body["version_after"]
        base = yaml.safe_load((config_dir / "config.yaml").read_text())
        assert base["ui"]["theme"] == "dark"
        assert base["chat"]["max_messages"] == 200
        assert "# AutoBot base configuration" in (config_dir / "config.yaml").read_text()

    def test_nothing_to_sync_writes_nothing(self, config_dir: Path, api: httpx.Client) -> None:
        (config_dir / "settings.json").unlink()
        before = files_of(config_dir)

        answer = api.post(SYNC)

        assert answer.status_code == 200
        assert answer.json()["status"] == "nothing_to_sync"
        assert files_of(config_dir) == before

    def test_critical_result_is_409_with_findings(
        self, config_dir: Path, api: httpx.Client
    ) -> None:
        (config_dir / "settings.json").write_text(json.dumps({"backend": "not a mapping"}))
        before = files_of(config_dir)

        answer = api.post(SYNC)

        assert answer.status_code == 409
        body = answer.json()
        assert body["error"] == "rejected"
        assert body["summary"]["critical"] >= 1
        assert any(finding["level"] == "critical" and finding["path"] == "backend"
                   for finding in body["findings"])
        assert "sync again" in body["message"]
        assert files_of(config_dir) == before

    def test_unparsable_settings_is_409(self, config_dir: Path, api: httpx.Client) -> None:
        (config_dir / "settings.json").write_text('{"ui": ')
        before = files_of(config_dir)

        answer = api.post(SYNC)

        assert answer.status_code == 409
        assert answer.json()["findings"]
        assert files_of(config_dir) == before

    def test_lock_held_past_the_timeout_is_423_naming_the_holder(
        self, config_dir: Path
    ) -> None:
        holder = subprocess.Popen(
            [sys.executable, str(TESTS / "lock_worker.py"), "hold",
             str(config_dir / "config.yaml")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == f"held {holder.pid}\n"
            before = files_of(config_dir)

            with serving(app_for(config_dir, lock_timeout_s=0.3)) as url:
                answer = httpx.post(f"{url}{SYNC}", headers=AUTH, timeout=30)

            assert answer.status_code == 423
            assert answer.json()["error"] == "locked"
            assert answer.json()["holder_pid"] == holder.pid
            assert str(holder.pid) in answer.json()["message"]
            assert files_of(config_dir) == before
        finally:
            holder.communicate("", timeout=10)

    def test_second_sync_within_a_minute_is_429_with_retry_after(
        self, api: httpx.Client
    ) -> None:
        assert api.post(SYNC).status_code == 200

        answer = api.post(SYNC)

        assert answer.status_code == 429
        retry_after = int(answer.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert answer.json()["retry_after_s"] == retry_after
        assert f"try again in {retry_after} s" in answer.json()["message"]

    def test_a_refused_sync_may_be_retried_at_once_once_fixed(
        self, config_dir: Path, api: httpx.Client
    ) -> None:
        good = (config_dir / "settings.json").read_bytes()
        (config_dir / "settings.json").write_text('{"ui": ')
        assert api.post(SYNC).status_code == 409

        (config_dir / "settings.json").write_bytes(good)
        answer = api.post(SYNC)

        assert answer.status_code == 200
        assert answer.json()["status"] == "synced"
        assert api.post(SYNC).status_code == 429

    def test_a_sync_locked_out_may_be_retried_at_once(self, config_dir: Path) -> None:
        holder = subprocess.Popen(
            [sys.executable, str(TESTS / "lock_worker.py"), "hold",
             str(config_dir / "config.yaml")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
        )
        with serving(app_for(config_dir, lock_timeout_s=0.3)) as url:
            try:
                assert holder.stdout is not None
                assert holder.stdout.readline() == f"held {holder.pid}\n"
                assert httpx.post(f"{url}{SYNC}", headers=AUTH, timeout=30).status_code == 423
            finally:
                holder.communicate("", timeout=10)

            answer = httpx.post(f"{url}{SYNC}", headers=AUTH, timeout=30)

        assert answer.status_code == 200
        assert answer.json()["status"] == "synced"

    def test_rate_limit_is_per_client(self, config_dir: Path) -> None:
        with serving(app_for(config_dir)) as url:
            port = url.rsplit(":", 1)[1]
            first = httpx.post(f"{url}{SYNC}", headers=AUTH, timeout=30)
            other_transport = httpx.HTTPTransport(local_address="127.0.0.2")
            with httpx.Client(transport=other_transport, timeout=30) as other:
                second = other.post(f"http://127.0.0.1:{port}{SYNC}", headers=AUTH)
            third = httpx.post(f"{url}{SYNC}", headers=AUTH, timeout=30)

        assert first.status_code == 200
        assert second.status_code == 200
        assert third.status_code == 429

    def test_rate_limit_needs_the_token_first(self, api: httpx.Client) -> None:
        for _ in range(3):
            assert api.post(SYNC, headers={"Authorization": "Bearer wrong"}).status_code == 401

        assert api.post(SYNC).status_code == 200

    def test_secrets_never_appear_in_the_answer(
        self, config_dir: Path, api: httpx.Client
    ) -> None:
        (config_dir / "settings.json").write_text(json.dumps(
            {"memory": {"redis": {"password": "new-redis-secret-value"}}}
        ))

        answer = api.post(SYNC)

        assert answer.status_code == 200
        assert answer.json()["changes"][0]["path"] == "memory.redis.password"
        assert "new-redis-secret-value" not in answer.text
        assert "change-me-redis-password" not in answer.text


    def test_secrets_never_appear_in_a_refusal(self, config_dir: Path, api: httpx.Client) -> None:
        (config_dir / "settings.json").write_text(json.dumps(
            {"memory": "redis://:hunter2-in-a-url@127.0.0.1:6379"}
        ))

        answer = api.post(SYNC)

        assert answer.status_code == 409
        assert any(finding["path"] == "memory" for finding in answer.json()["findings"])
        assert "hunter2-in-a-url" not in answer.text


class TestTwoSyncsAtOnce:
    def test_one_syncs_the_other_waits_and_the_file_is_never_torn(
        self, config_dir: Path
    ) -> None:
        old = (config_dir / "config.yaml").read_bytes()
        answers: list[httpx.Response] = []
        torn: list[bytes] = []
        start = threading.Barrier(2)
        done = threading.Event()

        def reader() -> None:
            # Whatever moment it looks, config.yaml is the old file or the new one, whole.
            while not done.is_set():
                data = (config_dir / "config.yaml").read_bytes()
                if data != old and not isinstance(yaml.safe_load(data), dict):
                    torn.append(data)

        def syncer(url: str) -> None:
            start.wait()
            answers.append(httpx.post(f"{url}{SYNC}", headers=AUTH, timeout=30))

        with serving(app_for(config_dir, sync_interval_s=0)) as url:
            watcher = threading.Thread(target=reader)
            watcher.start()
            threads = [threading.Thread(target=syncer, args=(url,)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            done.set()
            watcher.join(10)

        outcomes = [(answer.status_code, answer.json().get("status")) for answer in answers]
        assert len(outcomes) == 2
        assert outcomes.count((200, "synced")) == 1
        outcomes.remove((200, "synced"))
        assert outcomes[0] in [(200, "nothing_to_sync"), (200, "unchanged"), (423, None)]
        assert torn == []
        new = (config_dir / "config.yaml").read_bytes()
        assert new != old
        assert yaml.safe_load(new)["ui"]["theme"] == "dark"


class TestSyncStatus:
    def test_body_is_that_of_sync_status_json(
        self, config_dir: Path, api: httpx.Client
    ) -> None:
        cli = CliRunner().invoke(
            main, ["sync-status", "--json", "--config-dir", str(config_dir)], env={}
        )

        answer = api.get(STATUS)

        assert answer.status_code == 200
        assert answer.json() == json.loads(cli.stdout)
        assert answer.json()["can_sync"] is True

    def test_after_a_sync_it_shows_the_backup_and_the_time(self, api: httpx.Client) -> None:
        synced = api.post(SYNC).json()

        body = api.get(STATUS).json()

        assert body["settings_file_exists"] is True  # it now holds only `prompts`
        assert body["can_sync"] is False
        assert body["backup_exists"] is True
        assert body["last_sync"] == synced["finished_at"]

    def test_missing_config_dir_is_503_saying_what_to_do(self, tmp_path: Path) -> None:
        with serving(app_for(tmp_path / "absent")) as url:
            status = httpx.get(f"{url}{STATUS}", headers=AUTH)
            sync = httpx.post(f"{url}{SYNC}", headers=AUTH)

        for answer in (status, sync):
            assert answer.status_code == 503
            assert "does not exist" in answer.json()["message"]
