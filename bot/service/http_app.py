"""The HTTP surface of ``acrcheck serve``: Slack endpoints behind a body cap, plus the ops routes.

Kept in the service layer (not the CLI) so the server builds it without importing the CLI.

``POST /slack/events`` takes every Slack payload (events, slash commands and interactions
share it, as in ``slack-manifest.yaml``). Each request goes through, in order:

1. draining → 503 (Slack retries another replica);
2. the body cap → 413, before the body is fully read;
3. the Slack signature and timestamp on the *raw bytes* (slack_sdk's ``SignatureVerifier``)
   → 401, before anything is parsed and without an ERROR line, so an unsigned request costs
   one HMAC and nothing else;
4. the payload's shape (:mod:`bot.service.slack_payload`) → 400 with a one-line reason;
5. Bolt. A payload no listener handles (an event type we do not subscribe to) gets 200 and
   nothing is posted: a 404 would only make Slack retry it.

Nothing a client sends can produce a 5xx or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.service.slack_payload import MalformedPayload, dumps_reason, parse_http_body, payload_problem

#: Slack's event, command and interaction payloads are far below this (file contents are fetched separately).
MAX_EVENT_BYTES = 1_048_576

log = logging.getLogger("acrcheck.http")


def raw_body_verifier(signing_secret: str) -> Any:
    """slack_sdk's ``SignatureVerifier``, signing the raw bytes when the body is not UTF-8.

    Its ``generate_signature`` decodes a bytes body as UTF-8 first; Slack signs bytes, and a
    body that is not UTF-8 (never sent by Slack, easily sent by anyone else) would raise
    instead of being checked. Same result as the library's for every UTF-8 body; timestamp
    window, clock and constant-time comparison stay the library's.
    """
    import hashlib
    import hmac

    from slack_sdk.signature import SignatureVerifier

    class RawBodyVerifier(SignatureVerifier):
        def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
            if timestamp is None or not isinstance(body, bytes):
                return super().generate_signature(timestamp=timestamp, body=body)
            base = b"v0:" + timestamp.encode("ascii") + b":" + body
            return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()

    return RawBodyVerifier(signing_secret)


def signature_ok(verifier: Any, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """slack_sdk's check (HMAC-SHA256 of ``v0:ts:body``, timestamp within 5 minutes), made total.

    ``SignatureVerifier.is_valid`` raises on a timestamp that is not a number and on a
    non-ASCII signature; both mean "not signed by Slack".
    """
    if verifier is None or not timestamp or not signature:
        return False
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not signature.isascii():
        return False
    try:
        return bool(verifier.is_valid(body=body, timestamp=timestamp, signature=signature))
    except Exception:
        return False


def build_http_app(bolt_app: Any, *, oauth: bool, readiness: Any = None, signing_secret: str | None = None) -> Any:
    """Starlette app: /slack/events (signed), OAuth pages when enabled, /healthz, /readyz, /metrics.

    With ``readiness`` (a :class:`bot.service.health.Readiness`), events are refused with 503 once
    shutdown starts, so Slack retries them against a replica that is staying up. ``signing_secret``
    defaults to the one the Bolt app was built with.
    """
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from bot.service.health import Readiness, ops_routes

    handler = AsyncSlackRequestHandler(bolt_app)
    state = readiness if readiness is not None else Readiness()
    secret = signing_secret if signing_secret is not None else getattr(bolt_app, "_signing_secret", None)
    verifier = raw_body_verifier(secret) if isinstance(secret, str) and secret.strip() else None
    if verifier is None:
        log.warning("no Slack signing secret: every request to /slack/events will be refused (401)")

    def refused(status: int, reason: str) -> Response:
        return Response(dumps_reason(reason) if status == 400 else reason.encode(), status_code=status,
                        media_type="application/json" if status == 400 else "text/plain")  # fmt: skip

    async def events(request: Request) -> Response:
        if state.draining:
            return PlainTextResponse("shutting down", status_code=503, headers={"Retry-After": "1"})
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
        raw = bytes(body)
        headers = request.headers
        if not signature_ok(verifier, raw, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")):
            log.debug("unsigned or stale request to /slack/events refused")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            problem = payload_problem(parse_http_body(raw, headers.get("content-type")))
        except MalformedPayload as exc:
            problem = str(exc)
        if problem:
            log.warning("signed request to /slack/events refused: %s", problem)
            return refused(400, problem)
        request._body = raw  # what Request.body() returns to Bolt's adapter
        try:
            response: Response = await handler.handle(request)
        except Exception as exc:  # building Bolt's request failed on a shape we did not foresee
            log.warning("signed request to /slack/events could not be read by Bolt (%s)", type(exc).__name__)
            return refused(400, "unreadable payload")
        if response.status_code == 404:  # no listener for it: acknowledge, post nothing
            return Response(status_code=200)
        return response

    async def oauth_pages(request: Request) -> Response:
        """/slack/install and /slack/oauth_redirect: browser pages, not Slack-signed payloads."""
        if state.draining:
            return PlainTextResponse("shutting down", status_code=503, headers={"Retry-After": "1"})
        try:
            result: Response = await handler.handle(request)
        except Exception as exc:
            log.warning("OAuth page %s failed (%s)", request.url.path, type(exc).__name__)
            return PlainTextResponse("bad request", status_code=400)
        return result

    routes = [Route("/slack/events", events, methods=["POST"]), *ops_routes(state)]
    if readiness is None:  # embedded use (tests): no readiness inputs, so only liveness and metrics
        routes = [r for r in routes if getattr(r, "path", "") != "/readyz"]
    if oauth:
        routes += [
            Route("/slack/install", oauth_pages, methods=["GET"]),
            Route("/slack/oauth_redirect", oauth_pages, methods=["GET"]),
        ]
    return Starlette(routes=routes)
