"""Unified diffs of configuration files with secret values masked."""

from __future__ import annotations

import difflib
import re

from hotconf.secrets import MASK, is_secret_key

# `key: value` in YAML or `"key": value` in JSON, with the key in group 2.
_KEY_VALUE = re.compile(r'^(\s*-?\s*"?)([A-Za-z0-9_.\-]+)("?\s*:\s*)(.+?)(,?)$')


def mask_secret_lines(text: str) -> str:
    """Replace the value of every line whose key names a secret."""
    lines = []
    for line in text.splitlines():
        match = _KEY_VALUE.match(line)
        if match and is_secret_key(match.group(2)) and match.group(4).strip() not in ("", "{"):
            line = f"{match.group(1)}{match.group(2)}{match.group(3)}{MASK}{match.group(5)}"
        lines.append(line)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def masked_diff(old: dict[str, bytes], new: dict[str, bytes], host: str) -> str:
    """A unified diff per managed file between ``old`` (on the host) and ``new``."""
    chunks: list[str] = []
    for name in sorted(set(old) | set(new)):
        before = mask_secret_lines(old[name].decode("utf-8", "replace")) if name in old else ""
        after = mask_secret_lines(new[name].decode("utf-8", "replace")) if name in new else ""
        if before == after and (name in old) == (name in new):
            continue
        chunks.extend(difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True),
            fromfile=f"{host}:{name}" if name in old else "/dev/null",
            tofile=f"local:{name}" if name in new else "/dev/null",
        ))
    return "".join(chunks)
