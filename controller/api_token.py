"""The bearer token of ``hotconf serve``: where it comes from, and how it is checked.

In order:

1. ``--token-file FILE``: the file must belong to no one but its owner (mode 0600 or
   stricter), since anyone who can read it can change the configuration.
2. ``$HOTCONF_API_TOKEN``.
3. Otherwise ``<config_dir>/.hotconf/api-token``, created (mode 0600) with a fresh
   random token when absent, and reused on the next start so a GUI keeps working.

The first two are *explicit*: only they allow serving beyond loopback, because a token
nobody chose is a token nobody has given to the clients that must present it.  The
token itself is never logged; the path of its file is.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from controller.errors import ControllerError

logger = logging.getLogger(__name__)

TOKEN_ENV = "HOTCONF_API_TOKEN"
GENERATED_TOKEN_PATH = Path(".hotconf") / "api-token"
MIN_TOKEN_LENGTH = 16

TokenSource = Literal["token-file", "environment", "generated"]


class ApiTokenError(ControllerError):
    """The API token is missing, unsafe, or may not be used for this bind address."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token and where it came from; ``repr`` never shows the token."""

    value: str
    source: TokenSource
    path: Path | None = None

    @property
    def explicit(self) -> bool:
        """True when an operator chose this token (a file or the environment)."""
        return self.source != "generated"

    def matches(self, presented: str) -> bool:
        """Compare in constant time, so the answer's timing tells nothing of the token."""
        # Digests first: compare_digest on the raw strings would still leak the length.
        presented_digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        expected_digest = hashlib.sha256(self.value.encode("utf-8")).digest()
        return hmac.compare_digest(presented_digest, expected_digest)

    def __repr__(self) -> str:
        return f"ApiToken(source={self.source!r}, path={self.path!r})"


def load_api_token(
    token_file: Path | None,
    config_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
) -> ApiToken:
    """The token serve checks requests against, from the first source that has one.

    With ``host`` beyond loopback and no explicit token, refuses before a token file is
    generated, so a refused start leaves nothing behind.
    Raises ApiTokenError for a token file that is missing, readable by others, empty or
    too short, and for a generated token file that cannot be created.
    """
    environ = os.environ if environ is None else environ

    if token_file is not None:
        token = ApiToken(_read_token_file(token_file), "token-file", token_file)
    elif environ.get(TOKEN_ENV, "").strip():
        token = ApiToken(_checked(environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}"), "environment")
    elif host is not None and not is_loopback(host):
        raise _generated_beyond_loopback(host)
    else:
        path = config_dir / GENERATED_TOKEN_PATH
        token = ApiToken(_generated_token(path), "generated", path)

    logger.info("api token source=%s path=%s", token.source, token.path or "-")
    return token


def require_explicit_token_beyond_loopback(token: ApiToken, host: str) -> None:
    """Refuse to serve on a non-loopback address with a token nobody configured."""
    if is_loopback(host) or token.explicit:
        return
    raise _generated_beyond_loopback(host)


def _generated_beyond_loopback(host: str) -> ApiTokenError:
    return ApiTokenError(
        f"refusing to listen on {host} with a generated token: beyond loopback the "
        f"token must be chosen on purpose. Pass --token-file FILE (mode 0600) or set "
        f"{TOKEN_ENV}, or listen on 127.0.0.1"
    )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; False for ``0.0.0.0`` and names."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_token_file(path: Path) -> str:
    try:
        status = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ApiTokenError(f"{path}: token file not found; create it or fix the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiTokenError(f"{path}: cannot read the token file: {exc}") from exc

    if not stat.S_ISREG(status.st_mode):
        raise ApiTokenError(f"{path}: the token file must be a regular file")
    if status.st_mode & 0o077:
        raise ApiTokenError(
            f"{path}: mode {stat.S_IMODE(status.st_mode):04o} lets others read the token; "
            f"run `chmod 600 {path}`"
        )
    return _checked(text.strip(), str(path))


def _checked(token: str, where: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ApiTokenError(
            f"{where}: the token has {len(token)} characters; use at least "
            f"{MIN_TOKEN_LENGTH} (e.g. `python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)"
        )
    return token


def _generated_token(path: Path) -> str:
    """Reuse the token file serve made before, or make one; never rewrite it."""
    if path.exists():
        return _read_token_file(path)

    # Written whole under a temporary name, then linked into place: a second serve
    # starting at the same moment sees no file or a complete one, never a half-written
    # token, and link() refuses to replace a file that appeared meanwhile.
    token = secrets.token_urlsafe(32)
    temporary = path.with_name(f"{path.name}.tmp-{secrets.token_hex(6)}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return _read_token_file(path)
    except OSError as exc:
        raise ApiTokenError(
            f"{path}: cannot create the API token file: {exc.strerror}; pass --token-file "
            f"FILE or set {TOKEN_ENV}"
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)

    logger.warning("api token created path=%s (read the token from that file)", path)
    return token
