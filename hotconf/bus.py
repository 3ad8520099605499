"""The Redis bus both sides share: names, message formats, validation and signing.

No network I/O happens here. The agent and the controller each hold their own Redis
client and use this module to name things and to turn messages into bytes and back:

- channel ``hotconf:reload`` (``RELOAD_CHANNEL``): the controller says "look now",
  ``{type, version, files, origin, ts}`` and, for a push to some hosts only, ``hosts``.
  It never carries configuration.
- stream ``hotconf:reports`` (``REPORTS_STREAM``, capped near ``REPORTS_STREAM_MAXLEN``
  entries): one entry per reload attempt, ``{host, version, state, summary, ts}``.
- hash ``hotconf:status`` (``STATUS_HASH``): host id -> that host's latest report.

With a shared key, every message carries ``sig``: a hex HMAC-SHA256 over a canonical
JSON encoding of the other fields, prefixed by the kind of message so a signed report
can never pass for a reload message. A receiver holding the key drops (and counts)
any message that is unsigned or badly signed: decoding raises ``BusMessageError``.

Redis calls, for reference::

    PUBLISH RELOAD_CHANNEL encode_reload(message, key)
    XADD REPORTS_STREAM MAXLEN ~ REPORTS_STREAM_MAXLEN * report_stream_fields(report, key)
    HSET STATUS_HASH report.host encode_report(report, key)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

from hotconf.errors import BusMessageError, HotconfError
from hotconf.version import MANAGED_FILES, VERSION_LENGTH

RELOAD_CHANNEL: Final = "hotconf:reload"
REPORTS_STREAM: Final = "hotconf:reports"
STATUS_HASH: Final = "hotconf:status"

# Enough for every host's last few hundred reloads; XADD trims approximately (~), which
# costs Redis nothing, so the stream may briefly hold a few more entries than this.
REPORTS_STREAM_MAXLEN: Final = 10_000

RELOAD_TYPE: Final = "reload"
SIGNATURE_FIELD: Final = "sig"

# A reload message or report is a few hundred bytes; anything this large is not ours.
MAX_MESSAGE_BYTES: Final = 64 * 1024

ReportState = Literal["applied", "rejected", "hook_failed", "unchanged", "stale"]
REPORT_STATES: Final[tuple[ReportState, ...]] = get_args(ReportState)

_VERSION = re.compile(rf"[0-9a-f]{{{VERSION_LENGTH}}}")
_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,252}")

_RELOAD_FIELDS = frozenset({"type", "version", "files", "origin", "ts"})
_RELOAD_OPTIONAL = frozenset({"hosts"})
_REPORT_FIELDS = frozenset({"host", "version", "state", "summary", "ts"})

# Domain separation: the MAC of one kind of message is useless for the other.
_RELOAD_CONTEXT = b"hotconf:reload\0"
_REPORT_CONTEXT = b"hotconf:report\0"

MIN_KEY_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class ReloadMessage:
    """"Look now": the files of ``version`` were pushed by ``origin``.

    ``files`` names the managed files that exist at that version, so a receiver can
    tell a deleted ``settings.json`` from one that has not arrived yet. ``hosts``
    names the hosts the files were pushed to; empty means every host. An agent not
    named ignores the message: a push limited to some hosts must not have the others
    wait for files that will never come and report them stale.
    """

    version: str
    files: tuple[str, ...]
    origin: str
    ts: float = field(default_factory=time.time)
    hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_version(self.version)
        _check_files(self.files)
        _check_host_id("origin", self.origin)
        _check_ts(self.ts)
        for host in self.hosts:
            _check_host_id("hosts", host)
        # Normal forms, so that encoding and decoding give back an equal message.
        object.__setattr__(self, "files", tuple(sorted(self.files)))
        object.__setattr__(self, "hosts", tuple(sorted(self.hosts)))
        object.__setattr__(self, "ts", float(self.ts))

    def is_for(self, host_id: str) -> bool:
        """True when this message concerns ``host_id``."""
        return not self.hosts or host_id in self.hosts

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": RELOAD_TYPE,
            "version": self.version,
            "files": list(self.files),
            "origin": self.origin,
            "ts": self.ts,
        }
        if self.hosts:
            body["hosts"] = list(self.hosts)
        return body


@dataclass(frozen=True, slots=True)
class AgentReport:
    """What one agent did with one version: the stream entry and the status hash value.

    ``summary`` is a JSON object chosen by the agent (findings counts, the first
    findings, a failed hook's exit code); it must not hold secret values.
    """

    host: str
    version: str
    state: ReportState
    summary: Mapping[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        _check_host_id("host", self.host)
        _check_version(self.version)
        if self.state not in REPORT_STATES:
            raise BusMessageError(
                f"report state {self.state!r} is not one of {', '.join(REPORT_STATES)}"
            )
        _check_summary(self.summary)
        _check_ts(self.ts)
        # A float ts reads back from the stream's text form as the very same float.
        object.__setattr__(self, "ts", float(self.ts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "version": self.version,
            "state": self.state,
            "summary": dict(self.summary),
            "ts": self.ts,
        }


def encode_reload(message: ReloadMessage, key: bytes | None = None) -> str:
    """The JSON text to PUBLISH on ``RELOAD_CHANNEL``, signed when ``key`` is given."""
    return _encode(message.to_dict(), _RELOAD_CONTEXT, key)


def decode_reload(data: bytes | str, key: bytes | None = None) -> ReloadMessage:
    """Parse and check a reload message; with ``key``, require a valid signature.

    Raises ``BusMessageError`` saying what is wrong: not JSON, a missing or unknown
    field, a bad value, no signature, or a signature that does not match.
    """
    payload = _verified_payload(data, "reload message", _RELOAD_CONTEXT, key)
    _check_fields("reload message", payload, _RELOAD_FIELDS, optional=_RELOAD_OPTIONAL)
    if payload["type"] != RELOAD_TYPE:
        raise BusMessageError(f"reload message: type {payload['type']!r} is not {RELOAD_TYPE!r}")
    files = payload["files"]
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise BusMessageError(f"reload message: files {files!r} is not a list of file names")
    hosts = payload.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(name, str) for name in hosts):
        raise BusMessageError(f"reload message: hosts {hosts!r} is not a list of host ids")
    return ReloadMessage(
        version=_string("reload message", "version", payload["version"]),
        files=tuple(files),
        origin=_string("reload message", "origin", payload["origin"]),
        ts=_number("reload message", payload["ts"]),
        hosts=tuple(hosts),
    )


def encode_report(report: AgentReport, key: bytes | None = None) -> str:
    """The JSON text stored as ``HSET STATUS_HASH host <text>``, signed with ``key``."""
    return _encode(report.to_dict(), _REPORT_CONTEXT, key)


def decode_report(data: bytes | str, key: bytes | None = None) -> AgentReport:
    """Parse and check a report from the status hash; with ``key``, require its signature."""
    payload = _verified_payload(data, "report", _REPORT_CONTEXT, key)
    return _report_from_payload(payload)


def report_stream_fields(report: AgentReport, key: bytes | None = None) -> dict[str, str]:
    """The field -> value map for ``XADD REPORTS_STREAM``.

    Each field is its own stream field so ``XRANGE`` stays readable; ``summary`` is
    JSON text and ``ts`` the float's repr. The signature covers the same canonical
    encoding as ``encode_report``, so one check serves both forms.
    """
    payload = report.to_dict()
    fields = {
        "host": report.host,
        "version": report.version,
        "state": report.state,
        "summary": _canonical_json(payload["summary"]),
        "ts": repr(report.ts),
    }
    if key is not None:
        fields[SIGNATURE_FIELD] = _signature(payload, _REPORT_CONTEXT, key)
    return fields


def report_from_stream_fields(
    fields: Mapping[bytes, bytes] | Mapping[str, str], key: bytes | None = None
) -> AgentReport:
    """Rebuild a report from one ``XREAD``/``XRANGE`` entry's fields (bytes or str)."""
    text = {_text(name): _text(value) for name, value in fields.items()}
    payload: dict[str, Any] = dict(text)
    if "summary" in text:
        payload["summary"] = _parse_json("report", "summary", text["summary"])
    if "ts" in text:
        try:
            payload["ts"] = float(text["ts"])
        except ValueError:
            raise BusMessageError(f"report: ts {text['ts']!r} is not a number") from None
    _verify(payload, "report", _REPORT_CONTEXT, key)
    payload.pop(SIGNATURE_FIELD, None)
    return _report_from_payload(payload)


def load_bus_key(path: Path) -> bytes:
    """Read the shared bus key from ``path``, which only its owner may read (mode 0600).

    Surrounding whitespace (a trailing newline) is not part of the key. Raises
    ``HotconfError`` naming the file and the fix when it is missing, not a regular
    file, readable by group or others, empty or shorter than 16 bytes.
    """
    create_hint = f"create one with: (umask 077; openssl rand -hex 32 > {path})"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise HotconfError(f"bus key file {path} does not exist; {create_hint}") from None
    except OSError as exc:
        raise HotconfError(f"bus key file {path} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise HotconfError(f"bus key file {path} is not a regular file; {create_hint}")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise HotconfError(
            f"bus key file {path} has mode {mode:04o}, so other users can read the key; "
            f"restrict it with: chmod 600 {path}"
        )

    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise HotconfError(f"bus key file {path} cannot be read: {exc.strerror}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise HotconfError(
            f"bus key file {path} holds {len(key)} bytes; a key needs at least "
            f"{MIN_KEY_BYTES}: {create_hint}"
        )
    return key


def _encode(payload: dict[str, Any], context: bytes, key: bytes | None) -> str:
    if key is not None:
        payload = {**payload, SIGNATURE_FIELD: _signature(payload, context, key)}
    return _canonical_json(payload)


def _verified_payload(
    data: bytes | str, what: str, context: bytes, key: bytes | None
) -> dict[str, Any]:
    if len(data) > MAX_MESSAGE_BYTES:
        raise BusMessageError(f"{what}: {len(data)} bytes is over the {MAX_MESSAGE_BYTES} limit")
    payload = _parse_json(what, "message", _text(data))
    if not isinstance(payload, dict):
        raise BusMessageError(f"{what}: expected a JSON object, got {type(payload).__name__}")
    _verify(payload, what, context, key)
    payload.pop(SIGNATURE_FIELD, None)
    return payload


def _verify(payload: dict[str, Any], what: str, context: bytes, key: bytes | None) -> None:
    # Without a key a signature is ignored: the receiver has nothing to check it with.
    if key is None:
        return
    claimed = payload.get(SIGNATURE_FIELD)
    if claimed is None:
        raise BusMessageError(f"{what}: unsigned, but a bus key is configured; dropped")
    if not isinstance(claimed, str):
        raise BusMessageError(f"{what}: signature is not a string; dropped")
    unsigned = {name: value for name, value in payload.items() if name != SIGNATURE_FIELD}
    try:
        expected = _signature(unsigned, context, key)
    except BusMessageError:
        raise BusMessageError(f"{what}: fields cannot be encoded for checking; dropped") from None
    if not hmac.compare_digest(expected.encode(), claimed.encode("utf-8", "replace")):
        raise BusMessageError(
            f"{what}: bad signature (sender has another bus key, or the message was altered); "
            "dropped"
        )


def _signature(payload: Mapping[str, Any], context: bytes, key: bytes) -> str:
    canonical = _canonical_json(payload).encode("utf-8")
    return hmac.new(key, context + canonical, hashlib.sha256).hexdigest()


def _canonical_json(value: Any) -> str:
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise BusMessageError(f"value cannot be encoded as JSON: {exc}") from exc


def _parse_json(what: str, part: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BusMessageError(f"{what}: {part} is not valid JSON ({exc})") from None


def _report_from_payload(payload: dict[str, Any]) -> AgentReport:
    _check_fields("report", payload, _REPORT_FIELDS)
    state = _string("report", "state", payload["state"])
    if state not in REPORT_STATES:
        raise BusMessageError(f"report: state {state!r} is not one of {', '.join(REPORT_STATES)}")
    return AgentReport(
        host=_string("report", "host", payload["host"]),
        version=_string("report", "version", payload["version"]),
        state=state,
        summary=payload["summary"],
        ts=_number("report", payload["ts"]),
    )


def _check_fields(what: str, payload: Mapping[str, Any], expected: frozenset[str],
                  *, optional: frozenset[str] = frozenset()) -> None:
    missing = sorted(expected - payload.keys())
    if missing:
        raise BusMessageError(f"{what}: missing field(s) {', '.join(missing)}")
    unknown = sorted(payload.keys() - expected - optional)
    if unknown:
        raise BusMessageError(f"{what}: unknown field(s) {', '.join(unknown)}")


def _check_version(version: str) -> None:
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise BusMessageError(
            f"version {version!r} is not {VERSION_LENGTH} lowercase hex digits "
            "(hotconf.version.content_version)"
        )


def _check_host_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not _HOST_ID.fullmatch(value):
        raise BusMessageError(
            f"{name} {value!r} is not a host id (letters, digits and ._:@-, at most 253)"
        )


def _check_files(files: tuple[str, ...]) -> None:
    unknown = [name for name in files if name not in MANAGED_FILES]
    if unknown or len(set(files)) != len(files):
        raise BusMessageError(
            f"files {list(files)!r} must be distinct names among {', '.join(MANAGED_FILES)}"
        )


def _check_summary(summary: Mapping[str, Any]) -> None:
    if not isinstance(summary, Mapping) or not all(isinstance(key, str) for key in summary):
        raise BusMessageError(f"summary {summary!r} is not a JSON object with string keys")
    _canonical_json(summary)


def _check_ts(ts: float) -> None:
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise BusMessageError(f"ts {ts!r} is not a finite number of seconds since the epoch")


def _string(what: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BusMessageError(f"{what}: {name} {value!r} is not a string")
    return value


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BusMessageError(f"{what}: ts {value!r} is not a number")
    return float(value)


def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BusMessageError("message is not UTF-8 text") from None
