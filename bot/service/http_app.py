"""The HTTP surface of ``acrcheck serve``: Slack endpoints behind a body cap, plus the ops routes.

Kept in the service layer (not the CLI) so the server builds it without importing the CLI.
"""

from __future__ import annotations

from typing import Any

#: Slack's event, command and interaction payloads are far below this (file contents are fetched separately).
MAX_EVENT_BYTES = 1_048_576


def build_http_app(bolt_app: Any, *, oauth: bool, readiness: Any = None) -> Any:
    """Starlette app: /slack/events (signed), OAuth pages when enabled, /healthz, /readyz, /metrics.

    With ``readiness`` (a :class:`bot.service.health.Readiness`), events are refused with 503 once
    shutdown starts, so Slack retries them against a replica that is staying up.
    """
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from bot.service.health import Readiness, ops_routes

    handler = AsyncSlackRequestHandler(bolt_app)
    state = readiness if readiness is not None else Readiness()

    async def events(request: Request) -> Response:
        if state.draining:
            return PlainTextResponse("shutting down", status_code=503, headers={"Retry-After": "1"})
        if request.method == "POST":
            # Bolt reads the whole body before it checks the signature: cap it first, so one
            # large unsigned request cannot exhaust the pod's memory.
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
                return PlainTextResponse("request too large", status_code=413)
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_EVENT_BYTES:
                    return PlainTextResponse("request too large", status_code=413)
            request._body = bytes(body)  # what Request.body() returns to Bolt's adapter
        return await handler.handle(request)

    routes = [Route("/slack/events", events, methods=["POST"]), *ops_routes(state)]
    if readiness is None:  # embedded use (tests): no readiness inputs, so only liveness and metrics
        routes = [r for r in routes if getattr(r, "path", "") != "/readyz"]
    if oauth:
        routes += [
            Route("/slack/install", events, methods=["GET"]),
            Route("/slack/oauth_redirect", events, methods=["GET"]),
        ]
    return Starlette(routes=routes)
