"""The HTTP API the GUI calls: ``create_app(settings)`` builds it, ``hotconf serve`` runs it.

Routes (all JSON; OpenAPI at ``/openapi.json``, browsable at ``/docs``):

=====================================  =================================================
GET  /healthz                          liveness, without auth
GET  /api/config/validate              the body of ``hotconf validate --json``
POST /api/settings/sync-to-base        fold settings.json into config.yaml
GET  /api/settings/sync-status         the body of ``hotconf sync-status --json``
GET  /api/fleet/status                 the body of ``hotconf status --json``
=====================================  =================================================

Every route but ``/healthz`` needs ``Authorization: Bearer <token>`` (compared in
constant time; see ``controller.api_token``).  Bodies over 64 KiB are refused before a
route sees them.  Each error is ``{"error": code, "message": what to do}``.  Work that
touches files runs in a thread, so a sync waiting for the lock never stalls the other
requests.  Secrets never appear in an answer: every body, errors included, goes
through ``hotconf.secrets.mask_tree`` on its way out (secret keys, and passwords in
URLs wherever they are quoted).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.api_body_limit import DEFAULT_LIMIT_BYTES, BodyLimitMiddleware
from controller.api_errors import ApiError, install_error_handlers
from controller.api_fleet import fleet_status_body
from controller.api_models import (
    FleetStatusBody,
    Health,
    SyncBody,
    SyncStatusBody,
    ValidationBody,
    error_responses,
)
from controller.api_sync import sync_status_body, sync_to_base_body
from controller.api_token import ApiToken
from controller.rate_limit import DEFAULT_INTERVAL_S, DEFAULT_MAX_CLIENTS, SyncRateLimiter
from hotconf.secrets import mask_tree
from hotconf.snapshot import load_snapshot

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """What the API serves and how it guards it."""

    config_dir: Path
    token: ApiToken
    sync_interval_s: float = DEFAULT_INTERVAL_S
    max_rate_clients: int = DEFAULT_MAX_CLIENTS
    lock_timeout_s: float = 5.0
    max_body_bytes: int = DEFAULT_LIMIT_BYTES
    environ: Mapping[str, str] | None = None
    inventory_path: Path | None = None  # None: found as `hotconf status` finds it


def create_app(settings: ApiSettings) -> FastAPI:
    """The FastAPI application for ``settings``; serve it with any ASGI server."""
    app = FastAPI(
        title="hotconf",
        version=_hotconf_version(),
        description="Validate AutoBot's configuration and fold GUI settings into its base.",
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    install_error_handlers(app)

    limiter = SyncRateLimiter(settings.sync_interval_s, settings.max_rate_clients)
    authorized = Depends(require_token)
    app.state.settings = settings
    app.state.rate_limiter = limiter

    @app.get("/healthz", response_model=Health, tags=["health"],
             responses=error_responses(500))
    async def healthz() -> dict[str, str]:
        """Liveness: answers while the process serves. Needs no token."""
        return {"status": "ok", "version": app.version}

    @app.get("/api/config/validate", response_model=ValidationBody, tags=["config"],
             dependencies=[authorized], responses=error_responses(401, 413, 500))
    async def validate() -> dict[str, Any]:
        """Validate the layered configuration; the body of `hotconf validate --json`."""
        snapshot = await asyncio.to_thread(load_snapshot, settings.config_dir, settings.environ)
        body = snapshot.report.to_dict()
        body["config_dir"] = str(settings.config_dir)
        body["version"] = snapshot.version
        # A finding's message or value may quote a URL with its password in it.
        masked: dict[str, Any] = mask_tree(body)
        return masked

    @app.post("/api/settings/sync-to-base", response_model=SyncBody, tags=["settings"],
              dependencies=[authorized],
              responses=error_responses(401, 409, 413, 423, 429, 500, 503))
    async def sync_to_base(request: Request) -> dict[str, Any]:
        """Fold settings.json into config.yaml as the new base, after a backup.

        Comments and key order of config.yaml stay; environment variables are never
        folded in. One sync per minute per client.
        """
        client = request.client.host if request.client else "unknown"
        return await sync_to_base_body(
            settings.config_dir, client, limiter, settings.lock_timeout_s
        )

    @app.get("/api/settings/sync-status", response_model=SyncStatusBody, tags=["settings"],
             dependencies=[authorized], responses=error_responses(401, 413, 500, 503))
    async def sync_status() -> dict[str, Any]:
        """Whether a sync can run, how many keys it changes, when the last one was."""
        return await sync_status_body(settings.config_dir)

    @app.get("/api/fleet/status", response_model=FleetStatusBody, tags=["fleet"],
             dependencies=[authorized], responses=error_responses(401, 413, 500, 503))
    async def fleet() -> dict[str, Any]:
        """Each host's applied version, state, report age, drift and reachability.

        The body of `hotconf status --json`, for the hosts of serve's inventory.
        """
        status = await fleet_status_body(settings.inventory_path, settings.config_dir)
        masked: dict[str, Any] = mask_tree(status)
        return masked

    return app


_BEARER = HTTPBearer(
    auto_error=False,
    description="The token of `hotconf serve` (its --token-file, $HOTCONF_API_TOKEN, "
                "or the .hotconf/api-token file it logged at start).",
)
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


async def require_token(request: Request, credentials: _Credentials) -> None:
    """Let the request through only with the right bearer token."""
    token: ApiToken = request.app.state.settings.token
    if credentials is None:
        raise ApiError(
            401, "unauthorized",
            "send the header `Authorization: Bearer <token>`; the token is in the file "
            "`hotconf serve` logged at start, or the one it was given",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token.matches(credentials.credentials):
        raise ApiError(
            401, "unauthorized",
            "the bearer token is wrong; use the token `hotconf serve` was started with",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def _hotconf_version() -> str:
    try:
        return version("hotconf")
    except PackageNotFoundError:
        return "0+unknown"
