"""Running ``acrcheck serve``: one transport, the ops endpoints, the scheduler, a clean stop.

* HTTP mode: uvicorn serves ``/slack/events`` (+ OAuth pages) and the ops endpoints
  (``/healthz``, ``/readyz``, ``/metrics``) on ``settings.port``. Ready once ``auth.test``
  succeeded (retried in the background, so a Slack blip at start does not crash-loop the pod).
* Socket Mode: the websocket to Slack, plus a small uvicorn server on ``settings.port`` with
  only the ops endpoints. Ready while the websocket is connected.
* The watch scheduler (``bot.scheduler.service.start_scheduler``) runs in every replica;
  only the elected leader schedules.
* SIGTERM/SIGINT: ``/readyz`` turns 503, new events are refused (HTTP 503, or the Socket
  Mode connection is closed so Slack delivers to another replica) and the scheduler starts no
  new sweep; then in-flight replies *and* scheduled posts get what is left of
  ``settings.shutdown_grace`` seconds (counted from the signal) to finish and be recorded;
  only then is scheduler leadership released, so a follower never resumes a post that is
  still on its way. Whatever is still running then is cancelled (a follower resumes those
  posts, looking for them in the channel first). A second signal stops at once.

We own the signals: uvicorn's own handling would re-raise SIGTERM after serving, which kills
the process before the in-flight replies are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import Any

from bot import metrics
from bot.config import Settings
from bot.service.health import Readiness, ops_app

log = logging.getLogger("acrcheck.serve")

PURGE_INTERVAL_SECONDS = 600.0
SLACK_RETRY_SECONDS = (2.0, 5.0, 10.0, 30.0, 60.0)


class Shutdown:
    """Set by the first SIGTERM/SIGINT (drain), ``force`` by the second (stop now)."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.force = asyncio.Event()
        self.requested_at: float | None = None  # loop time of the first signal

    def trigger(self) -> None:
        if self.requested.is_set():
            log.warning("second stop signal: not waiting for in-flight work")
            self.force.set()
        else:
            log.info("stop signal received: draining")
            self.requested_at = asyncio.get_running_loop().time()
        self.requested.set()

    def remaining(self, grace: float) -> float:
        """What is left of ``grace`` seconds counted from the first signal."""
        if self.requested_at is None:
            return grace
        return max(0.0, grace - (asyncio.get_running_loop().time() - self.requested_at))

    def install(self) -> None:
        """Handle signals on this loop (only possible in the main thread; tests call trigger())."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.trigger)


def _uvicorn_server(app: Any, *, host: str, port: int, settings: Settings) -> Any:
    """A uvicorn server that leaves signals to us and logs through our handlers."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # propagate to the root handler (JSON or text, redacted)
        access_log=False,  # probes every few seconds would drown the useful lines
        lifespan="off",
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace)),
    )
    return _Server(config)


async def _purge_forever(store: Any) -> None:
    """Expire old event ids, mutes and rate windows now and then."""
    while True:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(store.purge)
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


async def start_scheduler_if_available(settings: Settings, slack_client: Any) -> Any:
    """Start the watch scheduler when its module is installed; None otherwise (logged)."""
    try:
        from bot.scheduler.service import start_scheduler
    except ImportError:
        log.info("watch scheduler not installed; scheduled watches are off")
        metrics.set_leader_source(None)
        return None
    kwargs: dict[str, Any] = {}
    if "check" in inspect.signature(start_scheduler).parameters:
        kwargs["check"] = _metered_check()
    try:
        handle = await start_scheduler(settings, slack_client, **kwargs)
    except Exception:
        log.exception("watch scheduler failed to start; scheduled watches are off on this replica")
        metrics.set_leader_source(None)
        return None
    metrics.set_leader_source(lambda: bool(getattr(handle, "is_leader", False)))
    return handle


def _metered_check() -> Callable[..., Awaitable[Any]]:
    """The scheduler's production check, with its live checks counted in /metrics."""
    from bot.scheduler.observe import default_check

    async def check(registry: str, config: Any, settings: Settings) -> Any:
        diagnosis = await default_check(registry, config, settings)
        metrics.record_evidence(getattr(diagnosis, "evidence", ()))
        return diagnosis

    return check


async def _retry_with_backoff(
    attempt_once: Callable[[], Awaitable[str]], readiness: Readiness, shutdown: Shutdown, what: str
) -> bool:
    """Call ``attempt_once`` until it succeeds or shutdown is requested (backoff between tries).

    ``attempt_once`` returns a log message on success; a failure is shown in /readyz's
    detail with Slack's error code, never a stack trace.
    """
    for attempt in range(10_000):
        try:
            message = await attempt_once()
            readiness.slack_detail = "connected"
            log.info("%s", message)
            return True
        except Exception as exc:
            error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error") or type(exc).__name__
            readiness.slack_detail = f"{what} failed: {error}"
            log.warning("%s failed (%s); retrying", what, error)
        wait = SLACK_RETRY_SECONDS[min(attempt, len(SLACK_RETRY_SECONDS) - 1)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shutdown.requested.wait(), wait)
        if shutdown.requested.is_set():
            return False
    return False


async def _confirm_slack_http(client: Any, readiness: Readiness, shutdown: Shutdown) -> None:
    """HTTP mode is ready once auth.test passes; retry with backoff until it does."""
    connected = False

    async def probe() -> bool:
        return connected

    async def auth_test() -> str:
        response = await client.auth_test()
        return f"Slack auth.test ok (team {response.get('team_id')}, bot user {response.get('user_id')})"

    readiness.slack_probe = probe
    connected = await _retry_with_backoff(auth_test, readiness, shutdown, "auth.test")


async def _run_until_stopped(shutdown: Shutdown, *watch: asyncio.Task[Any]) -> None:
    """Wait for a stop signal, or for a server task to end on its own (a failure)."""
    stop = asyncio.create_task(shutdown.requested.wait())
    done, _ = await asyncio.wait({stop, *watch}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    for task in watch:
        if task in done and task.exception() is not None:
            raise RuntimeError("the HTTP server stopped unexpectedly") from task.exception()
        if task in done and not shutdown.requested.is_set():
            raise RuntimeError("the HTTP server stopped unexpectedly (is the port in use?)")


async def drain(
    grace: float,
    shutdown: Shutdown,
    *,
    keep: Iterable[asyncio.Task[Any]] = (),
    since_signal: Iterable[asyncio.Task[Any]] = (),
) -> tuple[int, int]:
    """Let in-flight work (Bolt runs listeners as background tasks) finish, for at most ``grace`` s.

    ``since_signal``: work that was in flight when the stop signal came (the scheduler's
    sweeps), counted even if it finished while the transports were closing. Returns
    (finished, cancelled). Everything still running after the grace (or a second signal) is
    cancelled so the process exits within the pod's termination grace period.
    """
    current = asyncio.current_task()
    kept = set(keep)
    earlier = {t for t in since_signal if t not in kept}
    pending = {t for t in asyncio.all_tasks() if t is not current and t not in kept and not t.done()}
    ended_early = sum(1 for t in earlier - pending if t.done() and t.cancelled())
    counted = len(pending | earlier)
    if not pending:
        return counted - ended_early, ended_early
    log.info("waiting up to %.0fs for %d in-flight task(s)", grace, len(pending))
    force = asyncio.create_task(shutdown.force.wait())
    try:
        remaining = set(pending)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while remaining and not shutdown.force.is_set():
            timeout = deadline - loop.time()
            if timeout <= 0:
                break
            _done, remaining = await asyncio.wait(remaining | {force}, timeout=timeout, return_when="FIRST_COMPLETED")
            remaining.discard(force)
    finally:
        force.cancel()
    for task in remaining:
        task.cancel()
    if remaining:
        await asyncio.wait(remaining, timeout=2)
        log.warning("shutdown: %d in-flight task(s) cancelled after %.0fs", len(remaining), grace)
    cancelled = len(remaining) + ended_early
    return counted - cancelled, cancelled


async def serve(
    settings: Settings, *, host: str, port: int, shutdown: Shutdown | None = None, install_signals: bool = True
) -> None:
    """Run until SIGTERM/SIGINT (or ``shutdown.trigger()``), then drain and stop."""
    from bot.service.metered_store import MeteredStore
    from handlers.app import build_app
    from handlers.oauth import oauth_enabled

    shutdown = shutdown or Shutdown()
    if install_signals:
        shutdown.install()
    store = await asyncio.to_thread(MeteredStore.from_url, settings.database_url)
    readiness = Readiness(engine=store.engine)
    bolt_app = build_app(settings, store)
    background = [asyncio.create_task(_purge_forever(store), name="acrcheck-purge")]
    scheduler = await start_scheduler_if_available(settings, bolt_app.client)
    at_signal: set[asyncio.Task[Any]] = set()  # the scheduler's work in flight when the signal came
    if scheduler is not None:
        background.append(asyncio.create_task(_drain_scheduler_on_stop(shutdown, scheduler, at_signal)))
    servers: list[asyncio.Task[Any]] = []
    try:
        if settings.slack_app_token:
            servers = await _socket_mode(settings, bolt_app, readiness, shutdown, host, port, background)
        else:
            oauth = oauth_enabled(settings)
            servers = await _http_mode(settings, bolt_app, readiness, shutdown, host, port, oauth, background)
    finally:
        readiness.draining = True
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        keep = [*servers, *background]
        if scheduler is not None:
            scheduler.begin_drain()  # no new sweeps; the ones in flight keep leadership until drained
            keep.append(scheduler.task)  # the leadership loop is not work: it ends with stop()
        # Bolt listeners (replies) and scheduler sweeps (posts) share one grace from the signal.
        finished, cancelled = await drain(
            shutdown.remaining(settings.shutdown_grace), shutdown, keep=keep, since_signal=at_signal
        )
        if scheduler is not None:  # only now: a follower must not resume a post still on its way
            with contextlib.suppress(Exception):
                await asyncio.wait_for(scheduler.stop(), 15)
        for server_task in servers:  # servers are not in-flight work: they were kept out of the drain
            server_task.cancel()
        await asyncio.gather(*servers, return_exceptions=True)
        await asyncio.to_thread(store.dispose)
        log.info("stopped (%d in-flight task(s) finished, %d cancelled)", finished, cancelled)


async def _drain_scheduler_on_stop(shutdown: Shutdown, scheduler: Any, at_signal: set[asyncio.Task[Any]]) -> None:
    """At the first signal, not after the transports closed: no sweep may start meanwhile.

    Notes the sweeps in flight then, so the final count includes those that finished while
    the transports were closing.
    """
    await shutdown.requested.wait()
    at_signal.update(scheduler.work())
    scheduler.begin_drain()


async def _http_mode(
    settings: Settings,
    bolt_app: Any,
    readiness: Readiness,
    shutdown: Shutdown,
    host: str,
    port: int,
    oauth: bool,
    background: list[asyncio.Task[Any]],
) -> list[asyncio.Task[Any]]:
    from bot.service.http_app import build_http_app

    if oauth:  # tokens come per workspace from the installation store: built = ready
        async def built() -> bool:
            return True

        readiness.slack_probe = built
    else:
        background.append(asyncio.create_task(_confirm_slack_http(bolt_app.client, readiness, shutdown)))
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app = build_http_app(bolt_app, oauth=oauth, readiness=readiness, signing_secret=secret)
    server = _uvicorn_server(app, host=host, port=port, settings=settings)
    serving = asyncio.create_task(server.serve(), name="acrcheck-http")
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started:
        print(f"acrcheck: listening on http://{host}:{port}/slack/events", flush=True)
    try:
        await _run_until_stopped(shutdown, serving)
    finally:
        readiness.draining = True
        server.should_exit = True  # stop accepting; uvicorn finishes the requests it has
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(serving), settings.shutdown_grace + 5)
    return []


async def _socket_mode(
    settings: Settings,
    bolt_app: Any,
    readiness: Readiness,
    shutdown: Shutdown,
    host: str,
    port: int,
    background: list[asyncio.Task[Any]],
) -> list[asyncio.Task[Any]]:
    from bot.service.socket_mode import GuardedSocketModeHandler

    assert settings.slack_app_token is not None
    handler = GuardedSocketModeHandler(bolt_app, settings.slack_app_token.get_secret_value())
    readiness.slack_probe = handler.client.is_connected
    server = _uvicorn_server(ops_app(readiness), host=host, port=port, settings=settings)
    ops = asyncio.create_task(server.serve(), name="acrcheck-ops")
    connector = asyncio.create_task(_connect_socket(handler, readiness, shutdown))
    background.append(connector)
    try:
        await _run_until_stopped(shutdown, ops)
    finally:
        readiness.draining = True
        connector.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handler.close_async(), 10)  # no new envelopes reach this replica
    server.should_exit = True
    return [ops]


async def _connect_socket(handler: Any, readiness: Readiness, shutdown: Shutdown) -> None:
    """Open the websocket, retrying with backoff; afterwards slack_sdk reconnects by itself."""

    async def connect() -> str:
        await handler.connect_async()
        print("acrcheck: connected in Socket Mode", flush=True)
        return "Socket Mode connected"

    await _retry_with_backoff(connect, readiness, shutdown, "Socket Mode connection")
