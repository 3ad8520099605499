"""Where serve's bearer token comes from, and when it may serve beyond loopback."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from controller.api_token import (
    ApiToken,
    ApiTokenError,
    is_loopback,
    load_api_token,
    require_explicit_token_beyond_loopback,
)

TOKEN = "s3cr3t-token-for-tests-0123456789"


def token_file(tmp_path: Path, text: str = TOKEN, mode: int = 0o600) -> Path:
    path = tmp_path / "api-token"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_token_file_is_read(tmp_path: Path) -> None:
    token = load_api_token(token_file(tmp_path), tmp_path / "config", environ={})

    assert (token.value, token.source, token.explicit) == (TOKEN, "token-file", True)


def test_token_file_wins_over_the_environment(tmp_path: Path) -> None:
    environ = {"HOTCONF_API_TOKEN": "x" * 32}

    token = load_api_token(token_file(tmp_path), tmp_path, environ=environ)

    assert token.value == TOKEN


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_token_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = token_file(tmp_path, mode=mode)

    with pytest.raises(ApiTokenError) as caught:
        load_api_token(path, tmp_path, environ={})

    assert f"chmod 600 {path}" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_missing_token_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApiTokenError, match="not found"):
        load_api_token(tmp_path / "absent", tmp_path, environ={})


def test_short_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApiTokenError, match="at least 16"):
        load_api_token(token_file(tmp_path, "short"), tmp_path, environ={})


def test_environment_token_is_explicit(tmp_path: Path) -> None:
    token = load_api_token(None, tmp_path, environ={"HOTCONF_API_TOKEN": f"  {TOKEN} "})

    assert (token.value, token.source, token.explicit) == (TOKEN, "environment", True)


def test_generated_token_is_created_0600_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controller.api_token")

    first = load_api_token(None, tmp_path, environ={})
    second = load_api_token(None, tmp_path, environ={})

    path = tmp_path / ".hotconf" / "api-token"
    assert first.source == "generated" and not first.explicit
    assert first.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first.value
    assert second.value == first.value
    assert len(first.value) >= 32
    assert str(path) in caplog.text
    assert first.value not in caplog.text
    assert [entry.name for entry in (tmp_path / ".hotconf").iterdir()] == ["api-token"]


def test_generated_token_file_made_readable_by_others_is_refused(tmp_path: Path) -> None:
    first = load_api_token(None, tmp_path, environ={})
    assert first.path is not None
    os.chmod(first.path, 0o644)

    with pytest.raises(ApiTokenError, match="chmod 600"):
        load_api_token(None, tmp_path, environ={})


def test_repr_never_shows_the_token() -> None:
    assert TOKEN not in repr(ApiToken(TOKEN, "environment"))


def test_matches_compares_the_whole_token() -> None:
    token = ApiToken(TOKEN, "environment")

    assert token.matches(TOKEN)
    assert not token.matches(TOKEN[:-1])
    assert not token.matches(TOKEN + "x")
    assert not token.matches("")
    assert not token.matches("é" * 10)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
     ("autobot.example", False)],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_generated_token_refuses_a_public_bind(tmp_path: Path) -> None:
    generated = load_api_token(None, tmp_path, environ={})

    with pytest.raises(ApiTokenError, match="--token-file"):
        require_explicit_token_beyond_loopback(generated, "0.0.0.0")
    require_explicit_token_beyond_loopback(generated, "127.0.0.1")


def test_explicit_token_allows_a_public_bind() -> None:
    require_explicit_token_beyond_loopback(ApiToken(TOKEN, "environment"), "0.0.0.0")
