"""The settings routes' work: sync-to-base and sync-status, as the CLI does them.

Both run ``controller.sync`` in a worker thread: a sync may wait up to the lock
timeout for another writer, and the event loop keeps answering meanwhile.  Every
outcome maps to one answer:

=========================================  ======  ====================================
outcome                                    status  body
=========================================  ======  ====================================
synced, nothing_to_sync, unchanged         200     the sync result
refused (CRITICAL findings, unparsable)    409     the findings; nothing was written
lock held past the timeout                 423     the holder's pid; nothing was written
a second sync within the interval          429     seconds to wait (and Retry-After)
config dir missing or unreadable           503     what to fix
a write or backup failed                   500     what failed and where things stand
=========================================  ======  ====================================

Only a sync that answers 200 takes the client's slot for the interval: after a 409,
423, 500 or 503 the client may fix the cause and try again at once.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from controller.api_errors import ApiError
from controller.errors import ControllerError
from controller.rate_limit import SyncRateLimiter, retry_after_header
from controller.sync import SyncResult, sync_status, sync_to_base
from hotconf.errors import HotconfError, LockTimeout
from hotconf.secrets import mask_tree
from hotconf.version import SETTINGS_FILE

logger = logging.getLogger(__name__)


async def sync_to_base_body(
    config_dir: Path, client: str, limiter: SyncRateLimiter, lock_timeout_s: float
) -> dict[str, Any]:
    """Run one sync for ``client``; the 200 body, or ApiError for every other outcome."""
    wait_s = limiter.try_acquire(client)
    if wait_s > 0:
        retry_after = retry_after_header(wait_s)
        raise ApiError(
            429, "rate_limited",
            f"one sync per {limiter.interval_s:g} s per client; try again in {retry_after} s",
            headers={"Retry-After": retry_after},
            extra={"retry_after_s": int(retry_after)},
        )

    try:
        result = await _sync_or_release(config_dir, client, limiter, lock_timeout_s)
    except LockTimeout as exc:
        raise ApiError(423, "locked", f"{exc}; nothing was written",
                       extra={"holder_pid": exc.holder_pid}) from exc
    except ControllerError as exc:
        raise ApiError(503, "config_dir", str(exc)) from exc
    except HotconfError as exc:
        logger.error("api sync failed config_dir=%s error=%s", config_dir, exc)
        raise ApiError(500, "sync_failed", str(exc)) from exc

    logger.info("api sync client=%s status=%s version_before=%s version_after=%s",
                client, result.status, result.version_before, result.version_after)
    body = result.to_dict()
    body["validation_summary"] = result.report.summary()
    if result.status == "refused":
        raise ApiError(
            409, "rejected",
            f"{result.message}. Fix the CRITICAL findings in {SETTINGS_FILE} "
            "(or config.yaml), then sync again",
            extra={"summary": result.report.summary(),
                   "findings": [finding.to_dict() for finding in result.report]},
        )
    # Findings may quote a URL with its password; the diff and changes are masked already.
    masked: dict[str, Any] = mask_tree(body)
    return masked


async def _sync_or_release(
    config_dir: Path, client: str, limiter: SyncRateLimiter, lock_timeout_s: float
) -> SyncResult:
    # Only a sync that wrote counts against the client: after a refusal, a held lock or
    # a failure the answer says "fix it, then sync again", and a 429 would contradict it.
    try:
        result = await asyncio.to_thread(sync_to_base, config_dir, lock_timeout=lock_timeout_s)
    except Exception:
        limiter.release(client)
        raise
    if result.status == "refused":
        limiter.release(client)
    return result


async def sync_status_body(config_dir: Path) -> dict[str, Any]:
    """The body of ``hotconf sync-status --json``."""
    try:
        body = await asyncio.to_thread(sync_status, config_dir)
    except ControllerError as exc:
        raise ApiError(503, "config_dir", str(exc)) from exc
    masked: dict[str, Any] = mask_tree(body)
    return masked
