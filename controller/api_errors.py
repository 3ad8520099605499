"""How the API answers when it does not succeed: one JSON shape for every error.

``{"error": code, "message": what went wrong and what to do}``, plus fields some errors
carry (``retry_after_s``, ``findings``, ``holder_pid``).  FastAPI's and Starlette's own
errors (404, 405, 422) and unexpected exceptions are answered in the same shape; an
unexpected exception's text goes to the log only, as it may quote configuration values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotconf.secrets import mask_tree

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than success: status, stable code, message saying what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def response(self) -> JSONResponse:
        # Findings and messages may quote values: mask secrets on the way out.
        body = mask_tree({"error": self.code, "message": self.message, **self.extra})
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"error": code, "message": what to do}``."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = (f"no route {request.method} {request.url.path}; "
                       "the routes are listed at /openapi.json and /docs")
        elif exc.status_code == 405:
            allowed = headers.get("Allow", headers.get("allow", ""))
            message = f"{request.method} is not allowed here; use {allowed or 'another method'}"
        else:
            message = str(exc.detail)
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return ApiError(exc.status_code, code, message, headers=headers).response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
            for error in exc.errors()
        )
        return ApiError(
            422, "invalid_request", f"the request is invalid: {problems}; see /openapi.json"
        ).response()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The exception's text may quote configuration values, so it goes to the log
        # (where the operator looks) and never into the answer.
        logger.error("api unexpected error method=%s path=%s error=%s",
                     request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return ApiError(
            500, "internal", "an unexpected error; the server log has the details"
        ).response()
