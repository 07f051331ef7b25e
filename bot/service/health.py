"""``/healthz``, ``/readyz`` and ``/metrics``: what Kubernetes and Prometheus ask the bot.

* ``/healthz`` — the process and its event loop answer. Liveness only: a Slack or database
  outage must not make Kubernetes restart healthy pods in a loop.
* ``/readyz`` — this replica can do its job: Slack is connected (HTTP mode: the app is built
  and ``auth.test`` succeeded; Socket Mode: the websocket is connected) **and** the database
  answers ``SELECT 1``. It turns 503 as soon as shutdown starts, so traffic drains first.
* ``/metrics`` — Prometheus text format (see :mod:`bot.metrics`).

The same routes are mounted next to ``/slack/events`` in HTTP mode and served by a small
HTTP server on ``settings.port`` in Socket Mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot import metrics

SlackProbe = Callable[[], Awaitable[bool]]

#: A database answer is reused this long, so probes from several sources cost one query.
DB_CACHE_SECONDS = 2.0
DB_TIMEOUT_SECONDS = 3.0


@dataclass(slots=True)
class Readiness:
    """The inputs of ``/readyz``; the server flips them as it starts, connects and stops."""

    engine: Engine | None = None
    slack_probe: SlackProbe | None = None
    slack_detail: str = "not connected yet"
    draining: bool = False
    _db: tuple[bool, str, float] = (False, "not checked yet", 0.0)
    _db_task: asyncio.Task[tuple[bool, str]] | None = field(default=None, repr=False)

    async def slack_ok(self) -> bool:
        if self.slack_probe is None:
            return False
        try:
            return await self.slack_probe()
        except Exception:
            return False

    async def database_ok(self) -> tuple[bool, str]:
        """``SELECT 1`` off the event loop, bounded; one query in flight at a time."""
        ok, detail, at = self._db
        if time.monotonic() - at < DB_CACHE_SECONDS:
            return ok, detail
        if self.engine is None:
            return False, "no database"
        if self._db_task is None or self._db_task.done():
            self._db_task = asyncio.create_task(asyncio.to_thread(_ping, self.engine))
        try:
            ok, detail = await asyncio.wait_for(asyncio.shield(self._db_task), DB_TIMEOUT_SECONDS)
        except TimeoutError:
            ok, detail = False, f"no answer within {DB_TIMEOUT_SECONDS:g} s"
        self._db = (ok, detail, time.monotonic())
        return ok, detail

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """(ready, JSON-able details) — details name what is wrong, never a secret."""
        if self.draining:
            metrics.set_ready(False)
            return False, {"ready": False, "slack": "shutting down", "database": "shutting down"}
        slack = await self.slack_ok()
        db_ok, db_detail = await self.database_ok()
        ready = slack and db_ok
        metrics.set_ready(ready)
        return ready, {
            "ready": ready,
            "slack": "connected" if slack else (self.slack_detail if self.slack_detail != "connected" else "disconnected"),
            "database": db_detail,
        }


def _ping(engine: Engine) -> tuple[bool, str]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True, "reachable"
    except Exception as exc:  # the URL (with its password) is never part of the answer
        return False, f"unreachable ({type(exc).__name__})"


def ops_routes(readiness: Readiness) -> list[Any]:
    """Starlette routes for the three endpoints."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_request: Request) -> Response:
        ready, details = await readiness.report()
        return JSONResponse(details, status_code=200 if ready else 503)

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]


def ops_app(readiness: Readiness) -> Any:
    """The endpoints alone, for Socket Mode (nothing else listens there)."""
    from starlette.applications import Starlette

    return Starlette(routes=ops_routes(readiness))
