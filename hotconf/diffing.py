"""Unified diffs of configuration files with every secret masked.

The diff is computed on the real lines, so a changed secret still shows as a changed
line, and printed from masked copies of them, so its value never does. A line is
masked when its key names a secret (``password: ...``), and so are the lines that
continue its value (a block scalar ``|`` or ``>``, a quoted string over several
lines); any secret value known from the parsed trees is masked wherever it appears
(list items under a secret key), and so is a password inside a URL, whatever its key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from hotconf.secrets import MASK, is_secret_key, is_secret_path, mask_text, mask_url_password

# A quoted value is matched whole, so a " #" inside it is not taken for a comment.
_KEY_LINE = re.compile(
    r"^(?P<lead>\s*(?:-\s+)?)(?P<quote>[\"']?)(?P<key>[^\s\"':#][^\"':#]*?)(?P=quote)"
    r"(?P<colon>\s*:\s+)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[\"'].*|[^#\s][^#]*?)(?P<tail>\s+#.*)?$"
)
# A key whose value is on the lines below it: a mapping, a list or a block scalar.
_KEY_OPENS = re.compile(
    r"^(?P<lead>\s*(?:-\s+)?)(?P<quote>[\"']?)(?P<key>[^\s\"':#][^\"':#]*?)(?P=quote)"
    r"\s*:\s*(?:#.*)?$"
)
_LEAD = re.compile(r"^\s*(?:-\s+)*")
_JSON_PAIR = re.compile(
    r'^(?P<lead>\s*"(?P<key>[^"]+)"\s*:\s*)(?P<value>"(?:[^"\\]|\\.)*"|[^,\s{\[]+)(?P<tail>\s*,?)$'
)


def secret_values(tree: Any, prefix: str = "") -> list[str]:
    """Every secret value in a configuration tree, as text, for masking free text."""
    found: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            found.extend(secret_values(value, path))
    elif isinstance(tree, list):
        for item in tree:
            found.extend(secret_values(item, prefix))
    elif tree not in (None, "") and prefix and is_secret_path(prefix):
        found.append(str(tree))
    return found


def mask_line(line: str, secrets: Iterable[str] = ()) -> str:
    """One line of YAML or JSON with a secret key's value, and known secrets, masked."""
    return _mask_line(line, list(secrets))[0]


def mask_lines(lines: Iterable[str], secrets: Iterable[str] = ()) -> list[str]:
    """Lines of one YAML or JSON file, masked as ``mask_line`` does, and the lines that
    continue a secret key's value (a block scalar, a multi-line string) masked whole."""
    known = list(secrets)
    shown: list[str] = []
    secret_column: int | None = None
    for line in lines:
        body = line.rstrip("\n")
        indent = len(body) - len(body.lstrip(" "))
        if secret_column is not None and (not body.strip() or indent > secret_column):
            # Still the secret's value: YAML continues a value on more indented lines.
            shown.append(_mask_continuation(body) + line[len(body):])
            continue
        masked, secret_column = _mask_line(line, known)
        shown.append(masked)
    return shown


def _mask_continuation(body: str) -> str:
    """A line inside a secret's value: keys and list dashes stay, every value goes."""
    if not body.strip() or _KEY_OPENS.match(body):
        return body
    pair = _KEY_LINE.match(body)
    if pair:
        return body[: pair.start("value")] + MASK + body[pair.end("value"):]
    lead = _LEAD.match(body)
    return (lead[0] if lead else "") + MASK


def _mask_line(line: str, secrets: list[str]) -> tuple[str, int | None]:
    """The masked line, and the column of its key when that key's value was masked."""
    body = line.rstrip("\n")
    ending = line[len(body):]
    column: int | None = None
    opens = _KEY_OPENS.match(body)
    if opens and is_secret_key(opens["key"]):
        column = opens.end("lead")
    for pattern in (_JSON_PAIR, _KEY_LINE):
        match = pattern.match(body)
        if match and is_secret_key(match["key"]):
            masked_value = f'"{MASK}"' if pattern is _JSON_PAIR else MASK
            if pattern is _KEY_LINE:
                column = match.end("lead")
            body = body[: match.start("value")] + masked_value + body[match.end("value"):]
            break
    return mask_url_password(mask_text(body, secrets)) + ending, column


def masked_unified_diff(
    name: str,
    before: bytes,
    after: bytes,
    *,
    secrets: Iterable[str] = (),
    labels: tuple[str, str] = ("current", "new"),
    context: int = 3,
) -> str:
    """The unified diff from ``before`` to ``after`` of file ``name``, secrets masked.

    ``secrets`` are values to mask wherever they appear (see ``secret_values``).
    Returns an empty string when the two are equal.
    """
    known = list(secrets)
    old_lines = before.decode("utf-8", "replace").splitlines(keepends=True)
    new_lines = after.decode("utf-8", "replace").splitlines(keepends=True)
    if old_lines == new_lines:
        return ""
    old_shown = mask_lines(old_lines, known)
    new_shown = mask_lines(new_lines, known)

    output = [f"--- {name} ({labels[0]})\n", f"+++ {name} ({labels[1]})\n"]
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        output.append(_hunk_header(first[1], last[2], first[3], last[4]))
        for tag, old_start, old_end, new_start, new_end in group:
            if tag == "equal":
                output.extend(" " + line for line in old_shown[old_start:old_end])
                continue
            output.extend("-" + line for line in old_shown[old_start:old_end])
            output.extend("+" + line for line in new_shown[new_start:new_end])
    return "".join(line if line.endswith("\n") else line + "\n" for line in output)


def _hunk_header(old_start: int, old_end: int, new_start: int, new_end: int) -> str:
    def span(start: int, end: int) -> str:
        length = end - start
        first = start + 1 if length else start
        return f"{first}" if length == 1 else f"{first},{length}"

    return f"@@ -{span(old_start, old_end)} +{span(new_start, new_end)} @@\n"
