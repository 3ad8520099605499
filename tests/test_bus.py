"""The Redis bus formats: names, round trips, validation and signatures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hotconf import bus
from hotconf.errors import BusMessageError, HotconfError
from hotconf.version import content_version

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"
VERSION = content_version({"config.yaml": b"backend: {}\n"})


def reload_message(**changes: object) -> bus.ReloadMessage:
    fields: dict[str, object] = {
        "version": VERSION,
        "files": ("settings.json", "config.yaml"),
        "origin": "main",
        "ts": 1_700_000_000.25,
    }
    fields.update(changes)
    return bus.ReloadMessage(**fields)  # type: ignore[arg-type]


def agent_report(**changes: object) -> bus.AgentReport:
    fields: dict[str, object] = {
        "host": "vm1",
        "version": VERSION,
        "state": "applied",
        "summary": {"critical": 0, "warnings": 1, "findings": ["ui.theme: unknown key"]},
        "ts": 1_700_000_001.5,
    }
    fields.update(changes)
    return bus.AgentReport(**fields)  # type: ignore[arg-type]


class TestNames:
    def test_names_match_the_design(self) -> None:
        assert bus.RELOAD_CHANNEL == "hotconf:reload"
        assert bus.REPORTS_STREAM == "hotconf:reports"
        assert bus.STATUS_HASH == "hotconf:status"
        assert bus.REPORTS_STREAM_MAXLEN > 0

    def test_report_states_are_the_five_states(self) -> None:
        assert set(bus.REPORT_STATES) == {
            "applied", "rejected", "hook_failed", "unchanged", "stale"
        }


class TestReloadMessage:
    def test_round_trip_unsigned(self) -> None:
        message = reload_message()

        decoded = bus.decode_reload(bus.encode_reload(message))

        assert decoded == message
        assert decoded.files == ("config.yaml", "settings.json")

    def test_wire_form_has_the_design_fields(self) -> None:
        payload = json.loads(bus.encode_reload(reload_message()))

        assert payload == {
            "type": "reload",
            "version": VERSION,
            "files": ["config.yaml", "settings.json"],
            "origin": "main",
            "ts": 1_700_000_000.25,
        }

    def test_round_trip_signed_from_bytes(self) -> None:
        message = reload_message(files=("config.yaml",))

        decoded = bus.decode_reload(bus.encode_reload(message, KEY).encode(), KEY)

        assert decoded == message

    def test_ts_defaults_to_now(self) -> None:
        message = bus.ReloadMessage(version=VERSION, files=("config.yaml",), origin="main")

        assert message.ts > 1_600_000_000

    @pytest.mark.parametrize(
        ("changes", "complaint"),
        [
            ({"version": "abc"}, "version 'abc'"),
            ({"version": VERSION.upper()}, "lowercase hex"),
            ({"files": ("config.yaml", "passwd")}, "config.yaml, settings.json"),
            ({"files": ("config.yaml", "config.yaml")}, "distinct"),
            ({"origin": ""}, "origin ''"),
            ({"origin": "main host"}, "origin 'main host'"),
            ({"ts": float("nan")}, "finite"),
        ],
    )
    def test_bad_values_are_refused_when_built(self, changes: dict[str, object],
                                               complaint: str) -> None:
        with pytest.raises(BusMessageError, match=complaint):
            reload_message(**changes)

    @pytest.mark.parametrize(
        ("changes", "complaint"),
        [
            ({"x": 1}, "unknown field"),
            ({"type": "nuke"}, "type 'nuke'"),
            ({"files": "config.yaml"}, "not a list"),
            ({"ts": "now"}, "ts 'now'"),
            ({"origin": 7}, "origin 7 is not a string"),
        ],
    )
    def test_bad_fields_from_the_wire_raise_bus_message_error(
        self, changes: dict[str, object], complaint: str
    ) -> None:
        payload = {"type": "reload", "version": VERSION, "files": [], "origin": "m", "ts": 1}
        payload.update(changes)

        with pytest.raises(BusMessageError, match=complaint):
            bus.decode_reload(json.dumps(payload))

    @pytest.mark.parametrize(
        ("text", "complaint"),
        [
            ("not json", "not valid JSON"),
            ("[1, 2]", "expected a JSON object"),
            ('{"type": "reload"}', "missing field"),
        ],
    )
    def test_malformed_messages_raise_bus_message_error(self, text: str, complaint: str) -> None:
        with pytest.raises(BusMessageError, match=complaint):
            bus.decode_reload(text)

    def test_oversized_message_is_refused_before_parsing(self) -> None:
        with pytest.raises(BusMessageError, match="over the"):
            bus.decode_reload("x" * (bus.MAX_MESSAGE_BYTES + 1))

    def test_non_utf8_bytes_are_refused(self) -> None:
        with pytest.raises(BusMessageError, match="UTF-8"):
            bus.decode_reload(b"\xff\xfe")


class TestSignatures:
    def test_unsigned_message_is_dropped_when_a_key_is_configured(self) -> None:
        text = bus.encode_reload(reload_message())

        with pytest.raises(BusMessageError, match="unsigned"):
            bus.decode_reload(text, KEY)

    def test_message_signed_with_another_key_is_dropped(self) -> None:
        text = bus.encode_reload(reload_message(), OTHER_KEY)

        with pytest.raises(BusMessageError, match="bad signature"):
            bus.decode_reload(text, KEY)

    def test_altered_field_breaks_the_signature(self) -> None:
        payload = json.loads(bus.encode_reload(reload_message(), KEY))
        payload["origin"] = "attacker"

        with pytest.raises(BusMessageError, match="bad signature"):
            bus.decode_reload(json.dumps(payload), KEY)

    def test_non_ascii_signature_is_a_bad_signature_not_a_crash(self) -> None:
        payload = json.loads(bus.encode_reload(reload_message(), KEY))
        payload["sig"] = "é" * 64

        with pytest.raises(BusMessageError, match="bad signature"):
            bus.decode_reload(json.dumps(payload), KEY)

    def test_signature_does_not_depend_on_key_order_or_spacing(self) -> None:
        payload = json.loads(bus.encode_reload(reload_message(), KEY))
        reordered = json.dumps(dict(reversed(list(payload.items()))), indent=2)

        assert bus.decode_reload(reordered, KEY) == reload_message()

    def test_a_signed_report_cannot_pass_as_a_reload_message(self) -> None:
        # Same key, valid MAC for a report: the reload check must still refuse it.
        report_text = bus.encode_report(agent_report(), KEY)
        payload = json.loads(report_text)
        forged = {"type": "reload", "version": VERSION, "files": [], "origin": "vm1",
                  "ts": payload["ts"], "sig": payload["sig"]}

        with pytest.raises(BusMessageError, match="bad signature"):
            bus.decode_reload(json.dumps(forged), KEY)

    def test_receiver_without_a_key_accepts_signed_messages(self) -> None:
        text = bus.encode_reload(reload_message(), KEY)

        assert bus.decode_reload(text) == reload_message()


class TestAgentReport:
    def test_hash_value_round_trip(self) -> None:
        report = agent_report()

        assert bus.decode_report(bus.encode_report(report, KEY), KEY) == report

    def test_stream_fields_are_flat_strings(self) -> None:
        fields = bus.report_stream_fields(agent_report())

        assert fields["host"] == "vm1"
        assert fields["state"] == "applied"
        assert json.loads(fields["summary"])["warnings"] == 1
        assert float(fields["ts"]) == 1_700_000_001.5
        assert "sig" not in fields

    def test_stream_round_trip_from_redis_bytes(self) -> None:
        report = agent_report(ts=1_700_000_002)
        fields = bus.report_stream_fields(report, KEY)
        as_redis_returns_them = {name.encode(): value.encode() for name, value in fields.items()}

        decoded = bus.report_from_stream_fields(as_redis_returns_them, KEY)

        assert decoded == report
        assert isinstance(decoded.ts, float)

    def test_stream_signature_matches_the_hash_signature(self) -> None:
        report = agent_report()

        stream_sig = bus.report_stream_fields(report, KEY)["sig"]
        hash_sig = json.loads(bus.encode_report(report, KEY))["sig"]

        assert stream_sig == hash_sig

    def test_tampered_stream_entry_is_dropped(self) -> None:
        fields = bus.report_stream_fields(agent_report(state="rejected"), KEY)
        fields["state"] = "applied"

        with pytest.raises(BusMessageError, match="bad signature"):
            bus.report_from_stream_fields(fields, KEY)

    def test_unsigned_stream_entry_is_dropped_when_keyed(self) -> None:
        fields = bus.report_stream_fields(agent_report())

        with pytest.raises(BusMessageError, match="unsigned"):
            bus.report_from_stream_fields(fields, KEY)

    @pytest.mark.parametrize(
        ("changes", "complaint"),
        [
            ({"state": "done"}, "state 'done'"),
            ({"host": "-vm"}, "host '-vm'"),
            ({"summary": {1: "x"}}, "string keys"),
            ({"summary": {"bad": object()}}, "cannot be encoded"),
            ({"ts": True}, "finite number"),
        ],
    )
    def test_bad_reports_are_refused_when_built(self, changes: dict[str, object],
                                                complaint: str) -> None:
        with pytest.raises(BusMessageError, match=complaint):
            agent_report(**changes)

    def test_stream_entry_with_unparsable_summary(self) -> None:
        fields = bus.report_stream_fields(agent_report())
        fields["summary"] = "{oops"

        with pytest.raises(BusMessageError, match="summary is not valid JSON"):
            bus.report_from_stream_fields(fields)

    def test_stream_entry_missing_a_field(self) -> None:
        fields = bus.report_stream_fields(agent_report())
        del fields["state"]

        with pytest.raises(BusMessageError, match=r"missing field.*state"):
            bus.report_from_stream_fields(fields)

    def test_report_with_unknown_state_from_the_wire(self) -> None:
        payload = json.loads(bus.encode_report(agent_report()))
        payload["state"] = "exploded"

        with pytest.raises(BusMessageError, match="state 'exploded'"):
            bus.decode_report(json.dumps(payload))


class TestLoadBusKey:
    def write_key(self, tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
        path = tmp_path / "bus.key"
        path.write_bytes(content)
        os.chmod(path, mode)
        return path

    def test_loads_the_key_without_its_newline(self, tmp_path: Path) -> None:
        path = self.write_key(tmp_path, KEY + b"\n")

        assert bus.load_bus_key(path) == KEY

    def test_owner_read_only_is_accepted(self, tmp_path: Path) -> None:
        path = self.write_key(tmp_path, KEY, mode=0o400)

        assert bus.load_bus_key(path) == KEY

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
    def test_group_or_world_readable_key_is_refused(self, tmp_path: Path, mode: int) -> None:
        path = self.write_key(tmp_path, KEY, mode=mode)

        with pytest.raises(HotconfError, match=f"mode {mode:04o}.*chmod 600 {path}"):
            bus.load_bus_key(path)

    def test_missing_file_says_how_to_create_one(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.key"

        with pytest.raises(HotconfError, match=r"does not exist.*openssl rand"):
            bus.load_bus_key(path)

    def test_short_key_is_refused(self, tmp_path: Path) -> None:
        path = self.write_key(tmp_path, b"short\n")

        with pytest.raises(HotconfError, match="holds 5 bytes"):
            bus.load_bus_key(path)

    def test_directory_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(HotconfError, match="not a regular file"):
            bus.load_bus_key(tmp_path)

    def test_key_errors_are_not_message_errors(self, tmp_path: Path) -> None:
        # Callers drop and count BusMessageError; a bad key file must stop them instead.
        path = self.write_key(tmp_path, KEY, mode=0o644)

        with pytest.raises(HotconfError) as caught:
            bus.load_bus_key(path)

        assert not isinstance(caught.value, BusMessageError)


class TestReloadMessageHosts:
    def test_hosts_round_trip_and_an_empty_list_means_every_host(self) -> None:
        from hotconf.bus import ReloadMessage, decode_reload, encode_reload

        named = ReloadMessage("0123456789ab", ("config.yaml",), "main", hosts=("vm2", "vm1"))
        decoded = decode_reload(encode_reload(named))
        assert decoded == named and decoded.hosts == ("vm1", "vm2")
        assert decoded.is_for("vm1") and not decoded.is_for("vm3")

        everyone = decode_reload(encode_reload(ReloadMessage("0123456789ab", (), "main")))
        assert "hosts" not in encode_reload(everyone)
        assert everyone.is_for("anyone")

    def test_a_signature_covers_the_hosts(self) -> None:
        import json

        from hotconf.bus import ReloadMessage, decode_reload, encode_reload
        from hotconf.errors import BusMessageError

        key = b"0123456789abcdef0123"
        signed = json.loads(encode_reload(
            ReloadMessage("0123456789ab", (), "main", hosts=("vm1",)), key))
        signed["hosts"] = ["vm1", "vm2"]
        with pytest.raises(BusMessageError, match="signature"):
            decode_reload(json.dumps(signed), key)

    def test_hosts_must_be_a_list_of_host_ids(self) -> None:
        import json

        from hotconf.bus import ReloadMessage, decode_reload, encode_reload
        from hotconf.errors import BusMessageError

        body = json.loads(encode_reload(ReloadMessage("0123456789ab", (), "main")))
        body["hosts"] = "vm1"
        with pytest.raises(BusMessageError, match="hosts"):
            decode_reload(json.dumps(body))
