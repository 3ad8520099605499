"""schemathesis over the API's own OpenAPI document, against a real uvicorn.

For every operation, generated requests (valid and invalid) must never get a 5xx, and
every answer must match what the document declares: status code, content type,
headers and body schema.  Requests without the token must be refused.

The document is taken from the application itself (it does not depend on settings);
the requests go over TCP to a uvicorn serving a copy of the example configuration.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from api_server import serving
from hypothesis import HealthCheck, settings

from controller.api import ApiSettings, create_app
from controller.api_token import ApiToken

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"
TOKEN = "schema-test-token-0123456789abcdef"


def api_settings(config_dir: Path, inventory: Path | None = None) -> ApiSettings:
    return ApiSettings(
        config_dir=config_dir,
        token=ApiToken(TOKEN, "environment"),
        environ={},
        inventory_path=inventory,
        lock_timeout_s=0.5,
    )


schema = schemathesis.openapi.from_dict(create_app(api_settings(EXAMPLE)).openapi())


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("schema")
    config_dir = root / "autobot"
    shutil.copytree(EXAMPLE, config_dir)
    inventory = root / "fleet.yaml"
    inventory.write_text(
        f"all:\n  hosts:\n    main: {{connection: local, config_dir: {config_dir}}}\n"
    )
    with serving(create_app(api_settings(config_dir, inventory))) as url:
        yield url


@schema.parametrize()
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case, api_url: str) -> None:
    case.call_and_validate(
        base_url=api_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
