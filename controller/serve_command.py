"""``hotconf serve``: the HTTP API for the GUI, served by uvicorn.

The command gathers its options into ``ApiSettings``, settles the token (refusing to
listen beyond loopback with one nobody chose), binds the socket itself so that a busy
port is one clear line and the log names the real address, and hands both to uvicorn.
On SIGINT or SIGTERM, requests in flight finish (within 10 s), then the process exits 0;
a second SIGINT cuts that short.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import uvicorn

from controller.api import ApiSettings, create_app
from controller.api_token import (
    TOKEN_ENV,
    load_api_token,
    require_explicit_token_beyond_loopback,
)
from controller.errors import ControllerError
from controller.inventory_command import inventory_option
from controller.options import config_dir_option

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
GRACEFUL_STOP_S = 10


@click.command()
@config_dir_option
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on. Beyond loopback, --token-file or "
                   f"${TOKEN_ENV} is required.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="TCP port to listen on (0: any free port, logged at start).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"File holding the bearer token, mode 0600. Else ${TOKEN_ENV}, else "
                   "CONFIG_DIR/.hotconf/api-token, created on first start.")
@inventory_option
@click.option("--lock-timeout", type=click.FloatRange(0, 300), default=5.0, show_default=True,
              help="Seconds a sync waits for the configuration lock before answering 423.")
def serve(
    config_dir: Path,
    host: str,
    port: int,
    token_file: Path | None,
    inventory_path: Path | None,
    lock_timeout: float,
) -> None:
    """Serve the HTTP API the GUI calls (OpenAPI at /openapi.json).

    Every route but /healthz needs `Authorization: Bearer <token>`. The inventory serves
    GET /api/fleet/status and is read on each call. Runs until SIGINT or SIGTERM. Exit 2
    when the token or the address is refused.
    """
    _log_at_info_at_least()
    token = load_api_token(token_file, config_dir, host=host)
    require_explicit_token_beyond_loopback(token, host)

    settings = ApiSettings(
        config_dir=config_dir, token=token, lock_timeout_s=lock_timeout,
        inventory_path=inventory_path,
    )
    app = create_app(settings)
    listener = _listen(host, port)
    bound_host, bound_port = listener.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    logger.info(
        "api listening url=http://%s:%d config_dir=%s token_source=%s token_file=%s",
        shown_host, bound_port, config_dir, token.source, token.path or "-",
    )

    config = uvicorn.Config(
        app,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
    )
    try:
        _Server(config).run(sockets=[listener])
    finally:
        listener.close()
    logger.info("api stopped")


class _Server(uvicorn.Server):
    """uvicorn's server, ending with exit status 0 after a graceful stop.

    uvicorn re-raises the signal that stopped it once it is done, so the process dies
    of SIGTERM; a stop that was asked for and went well should read as success.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        # uvicorn's handler only sets state: the first signal stops gracefully, a
        # second SIGINT forces the stop.
        previous = {number: signal.signal(number, self.handle_exit)
                    for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; ControllerError saying why it cannot be."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ControllerError(f"cannot listen on {host!r}: {exc.strerror}; check --host") from exc

    listener = socket.socket(family, kind, protocol)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Answers go out in two writes (head, body); without NODELAY, Nagle holds the
        # second until the client's delayed ACK, some 40 ms per request.
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        raise ControllerError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port "
            "or stop the process using it"
        ) from exc
    listener.set_inheritable(True)
    return listener


def _log_at_info_at_least() -> None:
    # A server tells its story (listening, token file, stopping) without -v.
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
