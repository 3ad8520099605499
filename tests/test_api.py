"""The HTTP API against a real uvicorn on a free loopback port: routes, auth, limits."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_server import serving
from click.testing import CliRunner

from controller.api import ApiSettings, create_app
from controller.api_token import ApiToken
from controller.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "autobot"
TOKEN = "api-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTECTED = [
    ("GET", "/api/config/validate"),
    ("GET", "/api/fleet/status"),
]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "autobot"
    shutil.copytree(EXAMPLE, target)
    return target


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("AUTOBOT", "HOTCONF_")):
            monkeypatch.delenv(name)


def settings_for(config_dir: Path, **overrides: object) -> ApiSettings:
    values: dict[str, object] = {
        "config_dir": config_dir,
        "token": ApiToken(TOKEN, "environment"),
        "environ": {},
        "inventory_path": config_dir / "absent-inventory.yaml",
    }
    values.update(overrides)
    return ApiSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def api(config_dir: Path) -> Iterator[httpx.Client]:
    with serving(create_app(settings_for(config_dir))) as url, \
            httpx.Client(base_url=url, timeout=10) as client:
        yield client


class TestHealth:
    def test_healthz_needs_no_token(self, api: httpx.Client) -> None:
        answer = api.get("/healthz")

        assert answer.status_code == 200
        assert answer.json()["status"] == "ok"


class TestValidate:
    def test_body_is_that_of_validate_json(
        self, config_dir: Path, clean_environment: None
    ) -> None:
        cli = CliRunner().invoke(main, ["validate", "--json", "--config-dir", str(config_dir)])
        expected = json.loads(cli.stdout)

        app = create_app(settings_for(config_dir, environ=None))
        with serving(app) as url:
            answer = httpx.get(f"{url}/api/config/validate", headers=AUTH)

        assert answer.status_code == 200
        body = answer.json()
        for document in (body, expected):
            document.pop("timestamp")
        assert body == expected

    def test_critical_findings_answer_unhealthy(self, config_dir: Path, api: httpx.Client) -> None:
        (config_dir / "config.yaml").write_text("backend: [not, a, mapping\n")

        body = api.get("/api/config/validate", headers=AUTH).json()

        assert body["status"] == "unhealthy"
        assert body["summary"]["critical"] >= 1

    def test_secrets_never_appear_in_the_answer(self, config_dir: Path) -> None:
        environ = {"AUTOBOT__MEMORY__REDIS__PASSWORD": "hunter2-from-the-environment"}

        with serving(create_app(settings_for(config_dir, environ=environ))) as url:
            answer = httpx.get(f"{url}/api/config/validate", headers=AUTH)

        assert answer.status_code == 200
        assert answer.json()["summary"]["info"] >= 1
        assert "hunter2-from-the-environment" not in answer.text
        assert "change-me-redis-password" not in answer.text


    def test_a_password_in_a_url_is_masked_in_findings(self, config_dir: Path) -> None:
        (config_dir / "settings.json").write_text(json.dumps(
            {"backend": {"llm": {"ollama": {"host": "ftp://admin:hunter2-in-a-url@host"}}}}
        ))

        with serving(create_app(settings_for(config_dir))) as url:
            answer = httpx.get(f"{url}/api/config/validate", headers=AUTH)

        assert answer.status_code == 200
        assert any(issue["path"] == "backend.llm.ollama.host" for issue in answer.json()["issues"])
        assert "hunter2-in-a-url" not in answer.text


class TestAuth:
    @pytest.mark.parametrize(("method", "path"), PROTECTED)
    def test_missing_token_is_401_with_a_challenge(
        self, api: httpx.Client, method: str, path: str
    ) -> None:
        answer = api.request(method, path)

        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["error"] == "unauthorized"
        assert "Authorization: Bearer" in answer.json()["message"]

    @pytest.mark.parametrize(
        "header",
        [f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", TOKEN,
         f"Bearer {TOKEN.upper()}"],
    )
    @pytest.mark.parametrize(("method", "path"), PROTECTED)
    def test_wrong_token_is_401(
        self, api: httpx.Client, method: str, path: str, header: str
    ) -> None:
        answer = api.request(method, path, headers={"Authorization": header})

        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"
        assert TOKEN not in answer.text

    def test_token_never_reaches_the_log(
        self, api: httpx.Client, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)

        api.get("/api/config/validate", headers=AUTH)
        api.get("/api/config/validate", headers={"Authorization": "Bearer wrong-token"})

        assert TOKEN not in caplog.text


class TestErrors:
    def test_unknown_route_is_json_404(self, api: httpx.Client) -> None:
        answer = api.get("/api/nothing", headers=AUTH)

        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"
        assert "/openapi.json" in answer.json()["message"]

    def test_wrong_method_is_json_405_with_allow(self, api: httpx.Client) -> None:
        answer = api.delete("/api/config/validate", headers=AUTH)

        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET"
        assert "use GET" in answer.json()["message"]

    def test_unexpected_error_is_json_500_without_its_text(self, config_dir: Path) -> None:
        app = create_app(settings_for(config_dir))

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("change-me-redis-password leaked")

        with serving(app) as url:
            answer = httpx.get(f"{url}/boom")

        assert answer.status_code == 500
        assert answer.json()["error"] == "internal"
        assert "change-me-redis-password" not in answer.text


class TestBodyLimit:
    def test_body_within_the_limit_passes(self, api: httpx.Client) -> None:
        answer = api.request("GET", "/healthz", content=b"x" * (64 * 1024))

        assert answer.status_code == 200

    def test_declared_body_over_64_kib_is_413(self, api: httpx.Client) -> None:
        answer = api.request("GET", "/healthz", content=b"x" * (64 * 1024 + 1))

        assert answer.status_code == 413
        assert answer.json()["error"] == "too_large"
        assert "64 KiB" in answer.json()["message"]

    def test_streamed_body_over_64_kib_is_413(self, api: httpx.Client) -> None:
        def chunks() -> Iterator[bytes]:
            for _ in range(200):
                yield b"x" * 1024

        answer = api.request("GET", "/healthz", content=chunks())

        assert answer.status_code == 413
        assert answer.json()["error"] == "too_large"

    def test_refused_before_auth(self, api: httpx.Client) -> None:
        answer = api.request("GET", "/api/config/validate", content=b"x" * 100_000)

        assert answer.status_code == 413


def status_json(version: str, state: str = "applied") -> str:
    return json.dumps({"host": "main", "version": version, "state": state,
                       "summary": {"findings": 0}, "ts": time.time() - 5})


class TestFleetStatus:
    def inventory(self, tmp_path: Path, config_dir: Path, other: Path) -> Path:
        path = tmp_path / "fleet.yaml"
        path.write_text(
            "all:\n"
            "  hosts:\n"
            f"    main: {{connection: local, config_dir: {config_dir}}}\n"
            f"    quiet: {{connection: local, config_dir: {other}}}\n"
        )
        return path

    def test_rows_for_each_host_with_drift_and_problems(
        self, tmp_path: Path, config_dir: Path
    ) -> None:
        from hotconf.version import directory_version

        other = tmp_path / "quiet"
        other.mkdir()
        version = directory_version(config_dir)
        (config_dir / ".hotconf").mkdir(exist_ok=True)
        (config_dir / ".hotconf" / "status.json").write_text(status_json(version))
        settings = settings_for(
            config_dir, inventory_path=self.inventory(tmp_path, config_dir, other)
        )

        with serving(create_app(settings)) as url:
            answer = httpx.get(f"{url}/api/fleet/status", headers=AUTH, timeout=30)

        assert answer.status_code == 200
        body = answer.json()
        assert body["expected_version"] == version
        assert body["converged"] is False
        rows = {row["host"]: row for row in body["hosts"]}
        assert rows["main"]["state"] == "applied"
        assert rows["main"]["drift"] is False
        assert rows["main"]["source"] == "status.json"
        assert rows["quiet"]["reachable"] is True
        assert "no report yet" in rows["quiet"]["problem"]

    def test_missing_inventory_is_503_saying_what_to_do(self, api: httpx.Client) -> None:
        answer = api.get("/api/fleet/status", headers=AUTH)

        assert answer.status_code == 503
        assert answer.json()["error"] == "no_inventory"
        assert "-i FILE" in answer.json()["message"]

    def test_bad_inventory_names_file_and_line(self, tmp_path: Path, config_dir: Path) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text("all:\n  hosts:\n    main: {ansible_port: 0}\n")

        with serving(create_app(settings_for(config_dir, inventory_path=bad))) as url:
            answer = httpx.get(f"{url}/api/fleet/status", headers=AUTH)

        assert answer.status_code == 503
        assert f"{bad}:3:" in answer.json()["message"]


class TestOpenApi:
    def test_every_response_is_described(self, api: httpx.Client) -> None:
        document = api.get("/openapi.json").json()

        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                assert operation["responses"], (method, path)
                for code, response in operation["responses"].items():
                    assert response.get("description"), (method, path, code)
                    if code != "204":
                        assert "application/json" in response["content"], (method, path, code)

    def test_protected_routes_declare_bearer_auth_and_401(self, api: httpx.Client) -> None:
        document = api.get("/openapi.json").json()

        assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        for method, path in PROTECTED:
            operation = document["paths"][path][method.lower()]
            assert operation["security"] == [{"HTTPBearer": []}]
            assert "401" in operation["responses"]
        assert "security" not in document["paths"]["/healthz"]["get"]
