"""``acrcheck serve``: run the Slack bot (Socket Mode or HTTP), or validate its settings.

Socket Mode when SLACK_APP_TOKEN is set (no public endpoint needed); otherwise HTTP mode
on ``settings.port`` at ``/slack/events`` with signature verification. Both run the same
AsyncApp from :func:`handlers.app.build_app`. ``--check-config`` validates everything it
can without connecting anywhere and exits 2 with readable errors.

Wire into the main CLI with ``add_serve_command(subparsers)``; the parser sets
``func`` to a callable taking the parsed args and returning an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from bot.config import Settings, load_settings

log = logging.getLogger("acrcheck.serve")

PURGE_INTERVAL_SECONDS = 600.0


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
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
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
def build_http_app(bolt_app: Any, *, oauth: bool) -> Any:
    """Starlette app: /slack/events (signed), OAuth pages when enabled, /healthz."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    handler = AsyncSlackRequestHandler(bolt_app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [Route("/slack/events", events, methods=["POST"]), Route("/healthz", health, methods=["GET"])]
    if oauth:
        routes += [
            Route("/slack/install", events, methods=["GET"]),
            Route("/slack/oauth_redirect", events, methods=["GET"]),
        ]
    return Starlette(routes=routes)


async def _purge_forever(store: Any) -> None:
    """Expire old event ids, mutes and rate windows now and then."""
    while True:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(store.purge)
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


async def serve(settings: Settings, *, host: str, port: int, log_level: str = "info") -> None:
    """Run until SIGINT/SIGTERM."""
    from bot.store import Store
    from handlers.app import build_app
    from handlers.oauth import oauth_enabled

    store = await asyncio.to_thread(Store.from_url, settings.database_url)
    bolt_app = build_app(settings, store)
    stop = asyncio.Event()
    purger = asyncio.create_task(_purge_forever(store))
    try:
        if settings.slack_app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            socket = AsyncSocketModeHandler(bolt_app, settings.slack_app_token.get_secret_value())
            await socket.connect_async()
            print("acrcheck: connected in Socket Mode", flush=True)
            await stop.wait()
            await socket.close_async()
        else:
            import uvicorn

            web = build_http_app(bolt_app, oauth=oauth_enabled(settings))
            config = uvicorn.Config(web, host=host, port=port, log_level=log_level.lower(), lifespan="off")
            print(f"acrcheck: listening on http://{host}:{port}/slack/events", flush=True)
            # uvicorn installs its own SIGINT/SIGTERM handling and shuts down gracefully.
            await uvicorn.Server(config).serve()
    finally:
        purger.cancel()
        store.dispose()


def run_serve_command(args: argparse.Namespace) -> int:
    """Entry point for ``acrcheck serve``; returns the process exit code."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from handlers import logsafe

    logsafe.install()
    logging.basicConfig(level=str(args.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, host=args.host, port=settings.port, log_level=args.log_level))
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
