"""The HTTP API: GET /api/config/validate latency, and a sustained 200 requests/s.

``hotconf serve`` runs as its own process on a free loopback port, serving a copy of
the example configuration, as it would in production; the client is this process.
The sustained run is bounded: 1000 requests paced at 200/s, 5 s of schedule.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.timing import Figures, sample_ms

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "autobot"
TOKEN = "bench-token-0123456789abcdefghij"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
ROUTE = "/api/config/validate"
START_TIMEOUT_S = 20.0
RATE_PER_S = 200
SUSTAINED_REQUESTS = 1000
CONNECTIONS = 8


def run(figures: Figures) -> None:
    with tempfile.TemporaryDirectory(prefix="hotconf-bench-api-") as scratch:
        config_dir = Path(scratch) / "autobot"
        shutil.copytree(EXAMPLE, config_dir)
        with _serve(config_dir) as url, httpx.Client(base_url=url, headers=HEADERS) as client:
            def one_request() -> None:
                answer = client.get(ROUTE)
                answer.raise_for_status()

            samples = sample_ms(one_request, repeat=300, warmup=20)
            figures.add_median_ms(f"GET {ROUTE} at the client, keep-alive", samples, target=10)

            errors, elapsed, latencies = asyncio.run(_sustained(url))
            figures.add(f"GET {ROUTE} paced at {RATE_PER_S}/s x {SUSTAINED_REQUESTS}: errors",
                        errors, "count", target=0)
            achieved = SUSTAINED_REQUESTS / elapsed
            figures.add(f"GET {ROUTE} paced at {RATE_PER_S}/s: shortfall below {RATE_PER_S}/s",
                        max(0.0, RATE_PER_S - achieved), "req/s", target=RATE_PER_S * 0.02)
            p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else 0.0
            figures.add(f"GET {ROUTE} paced at {RATE_PER_S}/s: p99 latency", p99, "ms")


async def _sustained(url: str) -> tuple[int, float, list[float]]:
    """Send requests on a fixed schedule; count failures and how long the whole took.

    A few keep-alive connections speak plain HTTP/1.1 from asyncio streams: a full
    HTTP client costs more CPU per request than the server does, and on a two-core
    machine it would measure itself rather than the server.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = (f"GET {ROUTE} HTTP/1.1\r\nHost: {host}\r\n"
               f"Authorization: Bearer {TOKEN}\r\n\r\n").encode()
    begin = time.perf_counter()
    schedule = iter(begin + index / RATE_PER_S for index in range(SUSTAINED_REQUESTS))
    errors = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for due in schedule:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                started = time.perf_counter()
                writer.write(request)
                status, _ = await _read_response(reader)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += status != 200
        finally:
            writer.close()
            await writer.wait_closed()

    async with asyncio.timeout(SUSTAINED_REQUESTS / RATE_PER_S * 4), asyncio.TaskGroup() as group:
        for _ in range(CONNECTIONS):
            group.create_task(worker())
    return errors, time.perf_counter() - begin, latencies


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


@contextmanager
def _serve(config_dir: Path) -> Iterator[str]:
    """Run ``hotconf serve --port 0`` and yield its URL, read from its start line."""
    environ = {**os.environ, "HOTCONF_API_TOKEN": TOKEN}
    command = [sys.executable, "-m", "controller", "serve", "--port", "0",
               "--config-dir", str(config_dir)]
    process = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        yield _wait_for_url(process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_url(process: subprocess.Popen[str]) -> str:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    seen = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        match = re.search(r"api listening url=(\S+)", line)
        if match:
            return match.group(1)
    raise RuntimeError("hotconf serve did not start:\n" + "".join(seen))
