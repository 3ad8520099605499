"""What a push would change on one host, as unified diffs with secrets masked."""

from __future__ import annotations

from hotconf.diffing import masked_unified_diff, secret_values
from hotconf.sources import Document, parse_document


def _secrets_in(files: dict[str, bytes]) -> list[str]:
    """Secret values of both files, so they are masked even where no key names them."""
    found: list[str] = []
    for name, raw in files.items():
        parsed = parse_document(name, raw)
        if isinstance(parsed, Document):
            found.extend(secret_values(parsed.tree))
    return found


def masked_diff(old: dict[str, bytes], new: dict[str, bytes], host: str) -> str:
    """A unified diff per managed file between ``old`` (on the host) and ``new`` (here)."""
    secrets = _secrets_in(old) + _secrets_in(new)
    return "".join(
        masked_unified_diff(name, old.get(name, b""), new.get(name, b""), secrets=secrets,
                            labels=(f"{host}" if name in old else "absent",
                                    "local" if name in new else "removed"))
        for name in sorted(set(old) | set(new))
    )
