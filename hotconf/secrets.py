"""Which keys hold secrets, and how they are masked.

A key is secret when its name says so: password, secret, token, or key as a word
(``api_key``, ``private_key``, ``key``), unless it names a count (``max_tokens``).
Secrets never reach a log, a report or an API answer; the agent's ``--render``
output for the service is the one exception.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "********"

_SECRET_NAME = re.compile(
    r"(passw(or)?d|passphrase|secret|token|credential|(^|[_\-.])(api)?keys?$|private_?key)",
    re.IGNORECASE,
)

# A count or a limit (max_tokens, min_password_length) names no secret, whatever follows.
_COUNT_NAME = re.compile(r"^(max|min|num)_", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """True when a key's last component names a secret.

    >>> is_secret_key("memory.redis.password"), is_secret_key("ui.keyboard_layout")
    (True, False)
    """
    last = key.rsplit(".", 1)[-1]
    return bool(_SECRET_NAME.search(last)) and not _COUNT_NAME.match(last)


def is_secret_path(path: str) -> bool:
    """True when any component of a dotted path names a secret (its whole subtree is)."""
    return any(is_secret_key(part) for part in path.split("."))


def mask_value(path: str, value: Any) -> Any:
    """The value as it may be shown: ``MASK`` for a secret that is set."""
    if value is None or value == "":
        return value
    if is_secret_path(path):
        return MASK
    return mask_tree(value, path)


_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)[^/@\s]+(?=@)")


def mask_url_password(text: str) -> str:
    """``redis://:pw@host`` -> ``redis://:********@host``; other text unchanged."""
    return _URL_PASSWORD.sub(lambda match: match["head"] + MASK, text)


def mask_tree(tree: Any, prefix: str = "") -> Any:
    """A copy of a configuration tree with every secret value replaced by ``MASK``.

    Passwords inside URLs (``redis://:pw@host``) are masked too, whatever the key.
    """
    if isinstance(tree, dict):
        masked = {}
        for key, value in tree.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if is_secret_key(str(key)) and value not in (None, ""):
                masked[key] = MASK
            else:
                masked[key] = mask_tree(value, path)
        return masked
    if isinstance(tree, list):
        return [mask_tree(item, prefix) for item in tree]
    if isinstance(tree, str) and "@" in tree:
        return mask_url_password(tree)
    return tree


def mask_text(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of the given secret values in free text."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text
