"""The agent and a real redis-server: reports, reload messages, signatures, outages.

Where a test must show that something did NOT happen, it relies on order instead of
a time window: announcements that never reach the disk turn ``stale`` after the
same delay, in the order they came, so a later one going stale first proves an
earlier one was never taken up.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from agent_process import (
    DEADLINE,
    VALID,
    VALID_2,
    StartAgent,
    agents_started,
    config_version,
    valid_config,
    valid_config_dir,
    wait_for_files,
)
from editor_saves import atomic_replace
from support.redis_server import RedisServer

from hotconf.bus import (
    RELOAD_CHANNEL,
    REPORTS_STREAM,
    STATUS_HASH,
    AgentReport,
    ReloadMessage,
    decode_report,
    encode_reload,
    report_from_stream_fields,
)
from hotconf.errors import BusMessageError

pytestmark = pytest.mark.integration

V1, V2 = config_version(VALID), config_version(VALID_2)
NEVER = config_version(valid_config(9999))
KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return valid_config_dir(tmp_path)


@pytest.fixture
def start_agent(config_dir: Path) -> Iterator[StartAgent]:
    with agents_started(config_dir) as start:
        yield start


class Reports:
    """Follows the reports stream with blocking reads, from the start of the stream."""

    def __init__(self, url: str, key: bytes | None = None) -> None:
        self.client = redis.Redis.from_url(url)
        self.key = key
        self.seen: list[AgentReport] = []
        self._position = "0-0"

    def close(self) -> None:
        self.client.close()

    def until(self, predicate: Callable[[AgentReport], bool]) -> AgentReport:
        deadline = time.monotonic() + DEADLINE
        for report in self.seen:
            if predicate(report):
                return report
        while (remaining := deadline - time.monotonic()) > 0:
            answer = self.client.xread(
                {REPORTS_STREAM: self._position}, block=max(1, int(remaining * 1000))
            )
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    self._position = entry_id.decode()
                    report = report_from_stream_fields(fields, self.key)
                    self.seen.append(report)
                    if predicate(report):
                        return report
        raise AssertionError(f"no such report within {DEADLINE:g} s; seen: {self.seen}")

    def of(self, version: str, state: str) -> AgentReport:
        return self.until(lambda report: report.version == version and report.state == state)

    def wait_for_subscription_check(self) -> None:
        checks = self.client.pubsub()
        checks.psubscribe("hotconf:agent-check:*")
        deadline = time.monotonic() + DEADLINE
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                message = checks.get_message(timeout=remaining)
                if message is not None and message["type"] == "pmessage":
                    return
            raise AssertionError("the agent made no subscription check")
        finally:
            checks.close()

    def publish(self, version: str, *, origin: str = "main", key: bytes | None = None,
                hosts: tuple[str, ...] = ()) -> None:
        files = ("config.yaml",)
        message = ReloadMessage(version=version, files=files, origin=origin, hosts=hosts)
        self.client.publish(RELOAD_CHANNEL, encode_reload(message, key))


@pytest.fixture
def reports(redis_url: str) -> Iterator[Reports]:
    following = Reports(redis_url)
    yield following
    following.close()


class TestReporting:
    def test_each_reload_goes_to_the_stream_and_the_hash(
        self, start_agent: StartAgent, config_dir: Path, redis_url: str, reports: Reports
    ) -> None:
        agent = start_agent("--redis", redis_url, "--debounce", "0")
        reports.of(V1, "applied")

        atomic_replace(config_dir / "config.yaml", VALID_2)

        streamed = reports.of(V2, "applied")
        assert streamed.host == "vm-test"
        assert streamed.summary["serving"] == V2
        stored = decode_report(reports.client.hget(STATUS_HASH, "vm-test"))
        assert (stored.version, stored.state) == (V2, "applied")
        assert agent.wait_for_version(V2)["bus"]["state"] == "connected"
        assert "Redis connected: redis=redis://127.0.0.1:" in agent.log()


class TestReloadMessages:
    def test_a_message_whose_version_is_on_disk_reloads_at_once(
        self, start_agent: StartAgent, config_dir: Path, redis_url: str, reports: Reports
    ) -> None:
        # A debounce far past the test's deadline: only the fast path can apply in time.
        agent = start_agent(
            "--redis", redis_url, "--debounce", "60", "--debounce-max-wait", "60"
        )
        reports.of(V1, "applied")

        atomic_replace(config_dir / "config.yaml", VALID_2)
        reports.publish(V2)

        applied = reports.of(V2, "applied")
        assert "redis" in applied.summary["seen"]
        assert "reload message: version=" + V2 + " origin=main" in agent.log()

    def test_a_message_for_the_version_already_applied_says_unchanged(
        self, start_agent: StartAgent, redis_url: str, reports: Reports
    ) -> None:
        start_agent("--redis", redis_url)
        reports.of(V1, "applied")

        reports.publish(V1)

        assert reports.of(V1, "unchanged").summary["serving"] == V1

    def test_a_version_that_never_reaches_the_disk_is_stale(
        self, start_agent: StartAgent, redis_url: str, reports: Reports
    ) -> None:
        start_agent("--redis", redis_url, "--stale-after", "0.3")
        reports.of(V1, "applied")

        reports.publish(NEVER)

        stale = reports.of(NEVER, "stale")
        assert stale.summary["on_disk"] == V1

    def test_files_arriving_after_their_message_are_not_stale(
        self, start_agent: StartAgent, config_dir: Path, redis_url: str, reports: Reports
    ) -> None:
        start_agent("--redis", redis_url, "--stale-after", "1", "--debounce", "0")
        reports.of(V1, "applied")

        reports.publish(V2)
        atomic_replace(config_dir / "config.yaml", VALID_2)
        reports.of(V2, "applied")
        reports.publish(NEVER)

        reports.of(NEVER, "stale")
        assert not [report for report in reports.seen if report.state == "stale"
                    and report.version == V2]

    def test_files_still_being_applied_by_a_slow_hook_are_not_stale(
        self,
        start_agent: StartAgent,
        config_dir: Path,
        redis_url: str,
        reports: Reports,
        tmp_path: Path,
    ) -> None:
        started, release = tmp_path / "hook-started", tmp_path / "hook-release"
        os.mkfifo(release)
        # The hook for V2 holds the reload until the test lets it go: no timing involved.
        hook = f"sh -c '[ $HOTCONF_VERSION != {V2} ] || {{ touch {started}; cat {release}; }}'"
        start_agent("--redis", redis_url, "--stale-after", "2", "--debounce", "0", "--hook", hook)
        reports.of(V1, "applied")

        reports.publish(V2)
        atomic_replace(config_dir / "config.yaml", VALID_2)
        wait_for_files([tmp_path], started.exists)
        # Announced after V2, stale after the same delay: V2's turn has passed by then.
        reports.publish(NEVER)
        reports.of(NEVER, "stale")
        with open(release, "w"):
            pass

        reports.of(V2, "applied")
        assert not [report for report in reports.seen if report.state == "stale"
                    and report.version == V2]

    def test_messages_from_its_own_host_id_are_ignored(
        self, start_agent: StartAgent, redis_url: str, reports: Reports
    ) -> None:
        start_agent("--redis", redis_url, "--stale-after", "0.3")
        reports.of(V1, "applied")
        own = config_version(valid_config(9998))

        reports.publish(own, origin="vm-test")
        reports.publish(NEVER, origin="main")

        reports.of(NEVER, "stale")
        assert [report.version for report in reports.seen if report.state == "stale"] == [NEVER]

    def test_messages_for_other_hosts_are_ignored(
        self, start_agent: StartAgent, redis_url: str, reports: Reports
    ) -> None:
        start_agent("--redis", redis_url, "--stale-after", "0.3")
        reports.of(V1, "applied")
        elsewhere = config_version(valid_config(9997))

        # A push limited to vm-other: this agent will never see those files.
        reports.publish(elsewhere, hosts=("vm-other",))
        reports.publish(NEVER, hosts=("vm-other", "vm-test"))

        reports.of(NEVER, "stale")
        assert [report.version for report in reports.seen if report.state == "stale"] == [NEVER]


class TestSharedKey:
    @pytest.fixture
    def key_file(self, tmp_path: Path) -> Path:
        path = tmp_path / "bus.key"
        path.write_bytes(KEY + b"\n")
        path.chmod(0o600)
        return path

    def test_reports_are_signed_and_unsigned_messages_dropped_and_counted(
        self, start_agent: StartAgent, config_dir: Path, redis_url: str, key_file: Path
    ) -> None:
        signed = Reports(redis_url, key=KEY)
        try:
            agent = start_agent(
                "--redis", redis_url, "--bus-key-file", str(key_file),
                "--debounce", "60", "--debounce-max-wait", "60",
            )
            signed.of(V1, "applied")
            with pytest.raises(BusMessageError, match="bad signature"):
                decode_report(signed.client.hget(STATUS_HASH, "vm-test"), b"another key" * 2)

            atomic_replace(config_dir / "config.yaml", VALID_2)
            signed.publish(V2)  # unsigned: dropped
            signed.publish(V2, key=b"fedcba9876543210fedcba9876543210")  # wrong key: dropped
            signed.publish(V2, key=KEY)

            applied = signed.of(V2, "applied")
            assert "redis" in applied.summary["seen"]
            status = agent.wait_for_version(V2)
            assert status["bus"]["dropped_messages"] == 2
            assert agent.log().count("reload message dropped") == 2
        finally:
            signed.close()

    def test_a_key_file_others_can_read_is_refused(
        self, start_agent: StartAgent, redis_url: str, key_file: Path
    ) -> None:
        key_file.chmod(0o644)
        agent = start_agent("--redis", redis_url, "--bus-key-file", str(key_file))

        assert agent.wait_exit() == 2
        assert f"chmod 600 {key_file}" in agent.log()


class TestOutages:
    def test_redis_stopped_and_restarted(
        self, start_agent: StartAgent, config_dir: Path, redis_server: RedisServer
    ) -> None:
        agent = start_agent(
            "--redis", redis_server.url, "--debounce", "0", "--stale-after", "0.3"
        )
        first = Reports(redis_server.url)
        try:
            first.of(V1, "applied")
        finally:
            first.close()

        redis_server.kill()
        agent.wait_for_log("Redis lost")
        # Reloads never wait for Redis.
        atomic_replace(config_dir / "config.yaml", VALID_2)
        agent.wait_for_version(V2)
        redis_server.restart()

        agent.wait_for_log("Redis back")
        again = Reports(redis_server.url)
        try:
            again.of(V2, "applied")  # re-reported to the new, empty server
            again.publish(NEVER)  # and subscribed again
            again.of(NEVER, "stale")
        finally:
            again.close()
        assert agent.log().count("Redis lost") == 1

    def test_status_json_follows_the_link_and_counts_drops_without_a_reload(
        self, start_agent: StartAgent, config_dir: Path, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        key_file = tmp_path / "bus.key"
        key_file.write_bytes(KEY)
        key_file.chmod(0o600)
        agent = start_agent("--redis", redis_server.url, "--bus-key-file", str(key_file))
        agent.wait_for_status(lambda status: status["bus"]["state"] == "connected")

        # An unsigned message, and no change on disk: only the drop is news.
        reports = Reports(redis_server.url, key=KEY)
        try:
            reports.publish(V2)
        finally:
            reports.close()
        status = agent.wait_for_status(lambda status: status["bus"]["dropped_messages"] == 1)
        assert (status["version"], status["state"]) == (V1, "applied")

        redis_server.kill()
        agent.wait_for_status(lambda status: status["bus"]["state"] == "away")
        redis_server.start()
        agent.wait_for_status(lambda status: status["bus"]["state"] == "connected")
        assert agent.log().count("reload: version=") == 1

    def test_redis_away_at_start(
        self, start_agent: StartAgent, redis_server: RedisServer
    ) -> None:
        redis_server.stop()
        agent = start_agent("--redis", redis_server.url)
        agent.wait_for_version(V1)
        agent.wait_for_log("Redis away, running without it")

        redis_server.start()

        agent.wait_for_log("Redis connected")
        reports = Reports(redis_server.url)
        try:
            reports.of(V1, "applied")
        finally:
            reports.close()
        assert agent.log().count("Redis away") == 1

    def test_a_dead_subscription_is_found_by_its_round_trip(
        self, start_agent: StartAgent, redis_server: RedisServer
    ) -> None:
        agent = start_agent("--redis", redis_server.url, "--redis-check-interval", "0.2")
        reports = Reports(redis_server.url)
        try:
            reports.of(V1, "applied")
            # One of the agent's own round trips after the report: the report is
            # acknowledged, so only the subscription check can notice the pause.
            reports.wait_for_subscription_check()
        finally:
            reports.close()
        pid = redis_server.pid
        assert pid is not None

        # A paused server keeps its sockets open and answers nothing: no error comes.
        os.kill(pid, signal.SIGSTOP)
        try:
            lost = agent.wait_for_log("Redis lost")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert "subscription check got no answer" in lost

        agent.wait_for_log("Redis back")
