"""The shapes of the HTTP API's answers, for validation and the OpenAPI document.

Every route answers JSON.  Success bodies mirror the CLI's ``--json`` output; every
error is an ``ErrorBody`` (some with more fields) whose ``message`` says what to do.
Models allow extra fields, so a body the CLI grows later stays valid.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Health(_Open):
    status: Literal["ok"] = Field(description="Always `ok` while the process serves.")
    version: str = Field(description="The hotconf version serving.")


class FindingBody(_Open):
    level: Literal["info", "warning", "error", "critical"]
    category: str
    message: str
    path: str = Field(description="Dotted configuration path the finding concerns.")
    value: Any = Field(None, description="The value concerned, masked when it is a secret.")
    details: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(None, description="Where the value came from: file:line or VAR.")


class Summary(_Open):
    total: int
    critical: int
    errors: int
    warnings: int
    info: int


class ValidationBody(_Open):
    """The body of ``hotconf validate --json``."""

    status: Literal["healthy", "unhealthy"] = Field(
        description="`unhealthy` when any finding is CRITICAL."
    )
    timestamp: str
    summary: Summary
    issues: list[FindingBody]
    config_dir: str
    version: str = Field(description="Content version of the managed files (12 hex digits).")


class ReportBody(_Open):
    """A validation report: the findings of one run and their summary."""

    status: Literal["healthy", "unhealthy"]
    timestamp: str
    summary: Summary
    issues: list[FindingBody]


class ChangeBody(_Open):
    path: str = Field(description="Dotted path of the key settings.json changes.")
    before: Any = Field(None, description="The base's value (masked when secret).")
    after: Any = Field(None, description="The new value (masked when secret).")
    added: bool = Field(description="True when the key was not in config.yaml.")


class GenerationBody(_Open):
    id: str
    time: str
    version: str
    reason: str | None = None
    size: int
    files: list[dict[str, Any]]


class SyncBody(_Open):
    """The body of ``hotconf sync --json``, with the validation summary on top."""

    status: Literal["synced", "nothing_to_sync", "unchanged"] = Field(
        description="`synced`: config.yaml rewritten; otherwise nothing was written."
    )
    message: str
    config_dir: str
    version_before: str
    version_after: str
    changes: list[ChangeBody]
    kept_in_settings: list[str] = Field(
        description="Sections that never go into the base and stay in settings.json."
    )
    diff: str = Field(description="Unified diff of config.yaml, secrets masked.")
    validation: ReportBody
    validation_summary: Summary
    backup: GenerationBody | None = Field(
        None, description="The backup generation taken before writing, when synced."
    )
    finished_at: str | None = None


class SyncStatusBody(_Open):
    """The body of ``hotconf sync-status --json``."""

    config_dir: str
    version: str
    settings_file_exists: bool
    can_sync: bool
    status: str = Field(description="ready, nothing_to_sync, unchanged or refused.")
    message: str
    changes: int = Field(description="How many keys a sync would change in config.yaml.")
    validation_summary: Summary
    backup_exists: bool
    backups: int
    last_sync: str | None = Field(None, description="When the last sync finished (ISO 8601).")


class ErrorBody(_Open):
    error: str = Field(description="A stable code: unauthorized, too_large, rate_limited, ...")
    message: str = Field(description="What went wrong and what to do about it.")


class RateLimitedBody(ErrorBody):
    retry_after_s: int = Field(description="Seconds until this client may sync again.")


class LockedBody(ErrorBody):
    holder_pid: int | None = Field(None, description="The process holding the lock, if known.")


class RejectedBody(ErrorBody):
    summary: Summary
    findings: list[FindingBody] = Field(description="The findings; CRITICAL ones refused it.")


class HostStatusBody(_Open):
    host: str
    reachable: bool
    version: str | None = Field(None, description="The version the host's agent last reported.")
    serving: str | None = Field(None, description="The version the agent serves now.")
    state: str | None = Field(None, description="applied, rejected, hook_failed or unchanged.")
    reported_at: float | None = Field(None, description="Unix time of that report.")
    age_seconds: float | None = None
    source: str | None = Field(None, description="Where the report came from: redis or "
                                                 "status.json (over SFTP).")
    drift: bool = Field(description="True when the host runs another version than this one.")
    problem: str | None = Field(None, description="Why the host could not be read, if so.")
    summary: dict[str, Any] = Field(default_factory=dict)


class FleetStatusBody(_Open):
    """The body of ``hotconf status --json``."""

    expected_version: str = Field(description="The version of this host's managed files.")
    converged: bool = Field(description="Every host reachable, on that version, applied.")
    redis: bool = Field(description="True when the reports came from Redis.")
    redis_configured: bool
    taken_at: float
    hosts: list[HostStatusBody]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error answers a route may give."""
    return {code: _ERROR_RESPONSES[code] for code in codes}


_ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    401: {"model": ErrorBody,
          "description": "No `Authorization: Bearer <token>` header, or a wrong token."},
    409: {"model": RejectedBody,
          "description": "The result would have CRITICAL findings; nothing was written."},
    413: {"model": ErrorBody, "description": "The request body is over 64 KiB."},
    423: {"model": LockedBody,
          "description": "Another writer held the configuration lock past the timeout."},
    429: {"model": RateLimitedBody,
          "description": "One sync per minute per client; see the Retry-After header.",
          "headers": {"Retry-After": {"description": "Seconds to wait.",
                                      "schema": {"type": "integer"}}}},
    500: {"model": ErrorBody, "description": "An unexpected error; the server log has details."},
    503: {"model": ErrorBody, "description": "A needed resource is unavailable; try again."},
}
