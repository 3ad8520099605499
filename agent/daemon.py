"""The agent daemon: watching, debouncing, reloading and reporting, wired together.

Its log tells the story of the process: started (pid, config dir, the watcher and
why), the first reload, ready, one line per reload, Redis connected / lost / back,
stopping, stopped.

Signals only set state. SIGTERM or SIGINT: stop taking new looks, let a reload in
progress finish for up to ``RELOAD_GRACE`` seconds (then kill its hook), close
Redis and return, all within two seconds; a second one exits at once. SIGHUP:
re-read and re-apply now, even an unchanged version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping

from agent.announcements import Announcements
from agent.bus_link import BusLink, redacted_url
from agent.debounce import Debouncer
from agent.errors import AgentSettingsError
from agent.hooks import kill_running_hooks
from agent.looks import REDIS, SIGNAL, Look, LookQueue
from agent.reload import Reloader, read_disk
from agent.settings import AUTO_RELOAD_SWITCH, AgentSettings
from agent.status import StatusFile
from agent.watcher import Watching
from hotconf import __version__ as hotconf_version
from hotconf.bus import AgentReport, ReloadMessage, load_bus_key
from hotconf.errors import HotconfError

logger = logging.getLogger(__name__)

RELOAD_GRACE = 1.2
# A flood of dropped messages rewrites status.json at most this often.
BUS_STATUS_DELAY = 0.25
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Agent:
    """One agent run. ``await Agent(settings).run()`` returns when told to stop.

    Raises ``NothingToServe`` (exit 3) when nothing valid can be served at start,
    ``AgentSettingsError`` for a bad bus key, ``WatcherUnavailable`` when inotify
    was demanded and cannot be had.
    """

    def __init__(self, settings: AgentSettings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._environ = os.environ if environ is None else environ
        self._looks = LookQueue()
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop_signal: signal.Signals | None = None
        self._status = StatusFile(settings.config_dir)
        self._link: BusLink | None = None
        self._watching: Watching | None = None
        self._reloader = Reloader(settings, self._status, self._publish, self._environ)
        self._announcements = Announcements(
            settings.stale_after, self._report_stale,
            looked_at=lambda version: version == self._reloader.seen_version,
        )
        self._bus_status: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT (or ``stop()``)."""
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_stop_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        try:
            await self._run()
        finally:
            for signum in (*STOP_SIGNALS, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            self._announcements.close()
            if self._bus_status is not None:
                self._bus_status.cancel()
            logger.info("stopped: pid=%d", os.getpid())

    def stop(self) -> None:
        """Ask the agent to stop gracefully, as SIGTERM does."""
        self._stop.set()

    async def _run(self) -> None:
        settings = self.settings
        key = self._bus_key()
        for note in settings.notes:
            logger.warning("%s", note)

        async with contextlib.AsyncExitStack() as stack:
            if settings.auto_reload:
                self._watching = await stack.enter_async_context(Watching(
                    settings.config_dir, self._looks, mode=settings.watcher,
                    poll_interval=settings.poll_interval,
                    rescan_interval=settings.rescan_interval,
                ))
            self._refresh_status_context()
            logger.info(
                "started: pid=%d agent_version=%s host=%s config_dir=%s watcher=%s why=%r",
                os.getpid(), hotconf_version, settings.host_id, settings.config_dir,
                self._status.watcher["kind"], self._status.watcher["why"],
            )

            if settings.uses_redis and settings.redis is not None:
                self._link = BusLink(
                    settings.redis, host_id=settings.host_id, key=key,
                    on_reload=self._on_reload_message if settings.auto_reload else None,
                    check_interval=settings.redis_check_interval,
                    on_change=self._on_bus_change,
                )
                self._refresh_status_context()
            try:
                await self._serve()
            except BaseExceptionGroup as group:
                # NothingToServe and its kin are meant for the caller, not as a group.
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise

    async def _serve(self) -> None:
        debouncer = Debouncer(
            self._looks, quiet=self.settings.debounce, max_wait=self.settings.debounce_max_wait
        )
        async with asyncio.TaskGroup() as tasks:
            reloads = tasks.create_task(self._reload_loop(debouncer), name="hotconf-reloads")
            link = tasks.create_task(self._link.run(), name="hotconf-redis") if self._link else None

            await self._stop.wait()
            logger.info("stopping: signal=%s", self._stop_signal.name if self._stop_signal else "-")
            if not self._idle.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RELOAD_GRACE):
                        await self._idle.wait()
            reloads.cancel()
            if link is not None:
                link.cancel()
        if self._link is not None:
            self._link.close()

    async def _reload_loop(self, debouncer: Debouncer) -> None:
        self._idle.clear()
        try:
            await self._reloader.start()
        finally:
            self._idle.set()
        logger.info(
            "ready: version=%s serving=%s watching=%s redis=%s",
            self._reloader.seen_version, self._reloader.serving_version,
            self._status.watcher["kind"],
            redacted_url(self.settings.redis) if self._link and self.settings.redis else "off",
        )

        while True:
            look = await debouncer.settled()
            if self._stop.is_set():
                return
            self._idle.clear()
            try:
                self._refresh_status_context()
                await self._reloader.reload(look)
            except Exception:
                # A fault in one reload must not stop the agent: it keeps serving.
                logger.exception(
                    "reload failed unexpectedly; still serving version=%s",
                    self._reloader.serving_version,
                )
            finally:
                self._idle.set()
            self._announcements.settle(self._reloader.seen_version)

    def _on_reload_message(self, message: ReloadMessage) -> None:
        on_disk = read_disk(self.settings.config_dir).version
        if on_disk == message.version:
            self._looks.put(Look.of(REDIS, urgent=True, announced=[message.version]))
            return
        logger.info(
            "announced version not on disk yet, waiting for it: version=%s on_disk=%s",
            message.version, on_disk,
        )
        self._announcements.expect(message.version)

    def _report_stale(self, version: str) -> None:
        summary = {
            "on_disk": self._reloader.seen_version,
            "serving": self._reloader.serving_version,
            "waited_s": self.settings.stale_after,
        }
        report = AgentReport(self.settings.host_id, version, "stale", summary, time.time())
        if self._link is not None:
            self._link.submit(report, latest=False)

    def _publish(self, report: AgentReport) -> None:
        if self._link is not None:
            self._link.submit(report)

    def _on_bus_change(self) -> None:
        # status.json says where the link stands, not only where it stood at the
        # last reload; changes close together share one write.
        if self._bus_status is None:
            loop = asyncio.get_running_loop()
            self._bus_status = loop.call_later(BUS_STATUS_DELAY, self._rewrite_status)

    def _rewrite_status(self) -> None:
        self._bus_status = None
        self._refresh_status_context()
        self._status.rewrite()

    def _refresh_status_context(self) -> None:
        if self._watching is not None:
            watcher = {"kind": self._watching.kind, "why": self._watching.why}
        else:
            watcher = {"kind": "none", "why": f"{AUTO_RELOAD_SWITCH}=false"}
        self._status.watcher = watcher
        self._status.bus = self._link.describe() if self._link is not None else {"redis": "off"}

    def _bus_key(self) -> bytes | None:
        if self.settings.bus_key_file is None or not self.settings.uses_redis:
            return None
        try:
            return load_bus_key(self.settings.bus_key_file)
        except HotconfError as exc:
            raise AgentSettingsError(str(exc)) from exc

    def _on_stop_signal(self, signum: signal.Signals) -> None:
        if self._stop.is_set():
            logger.warning("second %s, exiting at once", signum.name)
            kill_running_hooks()
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(128 + signum)
        self._stop_signal = signum
        self._stop.set()

    def _on_reload_signal(self) -> None:
        logger.info("SIGHUP: re-reading and re-applying")
        self._looks.put(Look.of(SIGNAL, urgent=True, forced=True))
