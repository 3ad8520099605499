"""A real redis-server for tests, on a free loopback port, stopped by pid.

Fixtures (registered by tests/conftest.py):

- ``redis_server``: a fresh server of the test's own, which the test may ``stop()``,
  ``kill()`` and ``restart()`` (same port, empty data); stopped at teardown.
- ``redis_session_server``: one server for the whole session; do not stop it.
- ``redis_url``: the session server's URL, with every database flushed before the test.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from .ports import LOOPBACK
from .processes import LoggedProcess, PortServer, ServerStartError

_READY = re.compile(r"Ready to accept connections")


class RedisServer(PortServer):
    """One redis-server process without persistence; see the module docstring.

    ``start()``, ``stop()`` (SIGTERM), ``kill()`` (SIGKILL), ``restart()`` (same port,
    no data), ``pid``, ``running``, ``port``, ``url``, ``command(...)``.
    """

    bind_failed = re.compile(r"Address already in use|Failed listening on port")

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        super().__init__(port)
        self.workdir = workdir
        self.host = LOOPBACK

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, for redis-py and the agent's --redis."""
        return f"redis://{self.host}:{self.port}/0"

    def _launch(self) -> LoggedProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerStartError("redis-server is not on PATH; run: make system-packages")
        self.workdir.mkdir(parents=True, exist_ok=True)
        process = LoggedProcess(self._argv(binary), self.workdir / "redis.log", _READY)
        process.start()
        return process

    def _confirm(self) -> None:
        # The log line comes just before the accept loop; a PING proves it.
        if self.command("PING") != b"+PONG":
            raise ServerStartError(f"redis-server on port {self.port} does not answer PING")

    def command(self, *args: str, timeout: float = 2.0) -> bytes:
        """Send one command in RESP and return the first reply line, e.g. ``b"+PONG"``."""
        request = f"*{len(args)}\r\n".encode()
        for arg in args:
            encoded = arg.encode()
            request += b"$%d\r\n%s\r\n" % (len(encoded), encoded)
        with socket.create_connection((self.host, self.port), timeout=timeout) as conn:
            conn.sendall(request)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.split(b"\r\n", 1)[0]

    def _argv(self, binary: str) -> list[str]:
        return [
            binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
            "--logfile", "",
        ]


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test's own: stop, kill and restart it freely."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server shared by the session; tests that break Redis use ``redis_server``."""
    server = RedisServer(tmp_path_factory.mktemp("redis-session"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_session_server: RedisServer) -> str:
    """The shared server's URL, every database empty at the start of the test."""
    if not redis_session_server.running:
        redis_session_server.start()
    if redis_session_server.command("FLUSHALL") != b"+OK":
        raise ServerStartError("FLUSHALL failed on the session redis-server")
    return redis_session_server.url
