"""``acrcheck serve``: run the Slack bot (Socket Mode or HTTP), or validate its settings.

Socket Mode when SLACK_APP_TOKEN is set (no public endpoint needed); otherwise HTTP mode
on ``settings.port`` at ``/slack/events`` with signature verification. Both run the same
AsyncApp from :func:`handlers.app.build_app`; ``/healthz``, ``/readyz`` and ``/metrics`` are
served on ``settings.port`` in both (see :mod:`bot.server`). ``--check-config`` validates everything it
can without connecting anywhere and exits 2 with readable errors.

Wire into the main CLI with ``add_serve_command(subparsers)``; the parser sets
``func`` to a callable taking the parsed args and returning an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from bot.config import Settings, load_settings

log = logging.getLogger("acrcheck.serve")



def add_serve_command(subparsers: Any) -> None:
    """Register ``serve`` on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "serve",
        help="run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate settings without connecting; exit 2 on errors"
    )
    parser.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="HTTP mode: port (default: settings.port)")
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING (default: ACRCHECK_LOG_LEVEL, else INFO)"
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default=None, help="default: ACRCHECK_LOG_FORMAT, else text"
    )
    parser.set_defaults(func=run_serve_command)


# --- configuration check ----------------------------------------------------------------------
def _mask_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable>"


def check_config(settings: Settings) -> tuple[list[str], list[str]]:
    """Return (errors, summary lines). Never connects; secrets are reported as set/not set only."""
    errors: list[str] = []
    summary: list[str] = []
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    signing = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    oauth_id = settings.slack_client_id or ""
    oauth_secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else ""
    socket_mode = bool(app_token)

    if socket_mode:
        summary.append("transport: Socket Mode (SLACK_APP_TOKEN is set)")
        if not app_token.startswith("xapp-"):
            errors.append("SLACK_APP_TOKEN must be an app-level token starting with 'xapp-' (scope connections:write).")
    else:
        summary.append(f"transport: HTTP on port {settings.port}, path /slack/events")
        if not signing:
            errors.append("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode).")
    if bool(oauth_id) != bool(oauth_secret):
        errors.append("Set both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth installs, or neither.")
    oauth = bool(oauth_id and oauth_secret)
    if oauth and socket_mode:
        summary.append("oauth: client id/secret set, but ignored in Socket Mode (install pages need HTTP mode)")
        oauth = False
    elif oauth:
        summary.append("oauth: multi-workspace installs at /slack/install (installations stored in the database)")
    if not oauth:
        if not bot_token:
            errors.append("SLACK_BOT_TOKEN is required (a bot token starting with 'xoxb-').")
        elif not bot_token.startswith("xoxb-"):
            errors.append("SLACK_BOT_TOKEN must be a bot token starting with 'xoxb-'.")
    summary.append(
        "secrets: bot token {}, app token {}, signing secret {}, client secret {}".format(
            *("set" if v else "not set" for v in (bot_token, app_token, signing, oauth_secret))
        )
    )
    summary.append(f"slack api: {settings.slack_api_url}")

    try:
        from sqlalchemy.engine import make_url

        url = make_url(settings.database_url)
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            errors.append(f"database_url: unsupported database {backend!r}; use sqlite:/// or postgresql://")
        elif backend == "postgresql":
            importlib.import_module("psycopg")
        summary.append(f"database: {_mask_url(settings.database_url)}")
    except ImportError:
        errors.append(
            "database_url is PostgreSQL but the psycopg driver is not installed (pip install 'psycopg[binary]')."
        )
    except Exception as exc:
        errors.append(f"database_url is not a valid database URL ({type(exc).__name__}).")

    from bot.hostguard import UnsafeTarget, registry_target

    summary.append(
        f"defaults: mode {settings.default_mode}, reply threshold {settings.reply_threshold:g}, "
        f"language {settings.lang}"
    )
    summary.append(
        f"rate limits: {settings.user_rate_per_minute}/min per user, "
        f"{settings.channel_rate_per_minute}/min per channel (shared through the database)"
    )
    summary.append(f"workspace admins: {len(settings.admins)}")
    for channel_id, channel in sorted(settings.channels.items()):
        threshold = channel.threshold if channel.threshold is not None else settings.reply_threshold
        registries = ", ".join(channel.registries) or "any"
        summary.append(
            f"channel {channel_id}: mode {channel.mode}, threshold {threshold:g}, "
            f"bots {'on' if channel.allow_bots else 'off'}, registries {registries}, "
            f"admins {len(channel.admins)}"
        )
        for entry in channel.registries:
            try:
                registry_target(entry)
            except UnsafeTarget as exc:
                errors.append(f"channels.{channel_id}.registries: {entry!r} is refused: {exc}")
        for admin in channel.admins:
            if admin[:1] not in ("U", "W"):
                errors.append(f"channels.{channel_id}.admins: {admin!r} is not a Slack user id (U…/W…).")
    for admin in settings.admins:
        if admin[:1] not in ("U", "W"):
            errors.append(f"admins: {admin!r} is not a Slack user id (U…/W…).")
    try:
        importlib.import_module("handlers.watch")
        summary.append("watches: available")
    except ImportError:
        summary.append("watches: not available (handlers.watch missing)")
    return errors, summary


# --- running ------------------------------------------------------------------------------------
#: Slack's event, command and interaction payloads are far below this (file contents are fetched separately).
MAX_EVENT_BYTES = 1_048_576


def build_http_app(bolt_app: Any, *, oauth: bool, readiness: Any = None) -> Any:
    """Starlette app: /slack/events (signed), OAuth pages when enabled, /healthz, /readyz, /metrics.

    With ``readiness`` (a :class:`bot.health.Readiness`), events are refused with 503 once
    shutdown starts, so Slack retries them against a replica that is staying up.
    """
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from bot.health import Readiness, ops_routes

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


async def serve(settings: Settings, *, host: str, port: int, log_level: str = "info") -> None:
    """Run until SIGINT/SIGTERM (kept for callers of the old entry point; see bot.server)."""
    from bot.server import serve as run

    await run(settings, host=host, port=port)


def run_serve_command(args: argparse.Namespace) -> int:
    """Entry point for ``acrcheck serve``; returns the process exit code."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from bot.logconfig import configure_logging

    configure_logging("text", args.log_level or "INFO")  # until the settings say otherwise
    try:
        settings = load_settings()
    except ValidationError as exc:
        print("acrcheck serve: invalid settings:", file=sys.stderr)
        for detail in exc.errors():
            where = ".".join(str(p) for p in detail.get("loc", ())) or "settings"
            print(f"  - {where}: {detail.get('msg')}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # e.g. an environment variable that is not valid JSON for a list
        print(f"acrcheck serve: invalid settings: {exc}", file=sys.stderr)
        return 2
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    configure_logging(args.log_format or settings.log_format, args.log_level or settings.log_level)
    errors, summary = check_config(settings)
    if args.check_config or errors:
        for line in summary:
            print(line)
    if errors:
        print("acrcheck serve: configuration errors:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        return 2
    if args.check_config:
        print("configuration OK")
        return 0
    from bot.server import serve as run

    try:
        asyncio.run(run(settings, host=args.host, port=settings.port))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # e.g. the database is unreachable at start: say so, exit non-zero
        logging.getLogger("acrcheck.serve").error("serve failed: %s: %s", type(exc).__name__, exc)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m bot.cli_serve serve …``) until the main CLI wires it."""
    parser = argparse.ArgumentParser(prog="acrcheck")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
