"""A real uvicorn serving an app on a free loopback port, in a thread, for API tests.

The listening socket is bound and listening before the server starts, so a client may
connect at once: the kernel queues the connection until uvicorn accepts it, and no
readiness wait is needed.  Stopping asks uvicorn to exit and joins its thread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

STOP_TIMEOUT_S = 10.0


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    port = listener.getsockname()[1]

    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        listener.close()
        if thread.is_alive():
            raise RuntimeError(f"uvicorn on port {port} did not stop within {STOP_TIMEOUT_S}s")
