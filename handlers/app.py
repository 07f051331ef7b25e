"""Build the Bolt AsyncApp: client, middleware, listeners, error handler. Nothing else.

The same app object serves HTTP mode (behind Starlette) and Socket Mode, so both
transports run exactly the same handlers.
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.scheduler.poster import NotSentRetryHandler
from bot.store import Store
from handlers import actions, blocks, commands, events, logsafe, messages, oauth, shortcuts
from handlers.deps import Deps
from handlers.metered_client import MeteredWebClient
from handlers.response_url import allowed_origins, refuse_foreign_response_url

log = logging.getLogger("acrcheck.slack")

RATE_LIMIT_RETRIES = 3
#: Imported by listeners on first use; imported up front so the first command does not pay for it on the loop.
LAZY_MODULES = ("bot.checks.run",)
_process_prepared = False


def prepare_process() -> None:
    """Load what the listeners use, then exempt it from the garbage collector (once per process).

    The knowledge base, the Slack and Azure SDKs and SQLAlchemy are hundreds of thousands of
    long-lived objects. Left in the collector's oldest generation, each full collection walks
    all of them and stops the event loop for 60-100 ms, in the middle of a burst of commands
    waiting for their ack. :func:`gc.freeze` moves them out of its reach (they live as long
    as the process anyway); later objects are collected as usual.
    """
    global _process_prepared
    if _process_prepared:
        return
    _process_prepared = True
    from bot.engine.knowledge import default_knowledge

    default_knowledge()
    for name in LAZY_MODULES:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()


def api_base_url(settings: Settings) -> str:
    """slack_sdk joins method names onto the base URL, so it must end with a slash."""
    url = settings.slack_api_url
    return url if url.endswith("/") else url + "/"


def make_client(settings: Settings, *, token: str | None = None) -> AsyncWebClient:
    """Web API client with Slack's 429 Retry-After honoured, connection errors retried, calls counted.

    A post is resent only when its connection never opened (:class:`NotSentRetryHandler`): after a
    dropped connection Slack may already have applied it, and a blind retry would answer twice.
    """
    if token is None and settings.slack_bot_token is not None and not oauth.oauth_enabled(settings):
        token = settings.slack_bot_token.get_secret_value()
    return MeteredWebClient(
        token=token,
        base_url=api_base_url(settings),
        timeout=30,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            NotSentRetryHandler(max_retry_count=2),
        ],
    )


def build_app(settings: Settings, store: Store, *, client: AsyncWebClient | None = None) -> AsyncApp:
    """One AsyncApp wired with every listener kind; OAuth when client id/secret are set."""
    logsafe.install()
    prepare_process()
    deps = Deps(settings=settings, store=store)
    signing_secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    kwargs: dict[str, Any] = {
        "client": client or make_client(settings),
        "signing_secret": signing_secret,
        "process_before_response": False,
        "name": "acrcheck",
    }
    if oauth.oauth_enabled(settings) and not settings.slack_app_token:
        settings_obj, installation_store = oauth.oauth_settings(settings, store.engine)
        kwargs["oauth_settings"] = settings_obj
        kwargs["installation_store"] = installation_store
    app = AsyncApp(**kwargs)

    origins = allowed_origins(settings)

    async def inject(body: Any, context: Any, next: Callable[[], Awaitable[None]]) -> None:
        deps.ack_first.arrived()
        refuse_foreign_response_url(body, context, origins)
        context["acr"] = deps
        if context.get("client") is not None:  # count every Web API call a listener makes (/metrics)
            context["client"] = MeteredWebClient.wrap(context["client"])
        await next()

    actions.install_guard(app)  # first: Bolt cannot even call a function middleware on such a payload
    app.use(inject)
    messages.register(app)
    events.register(app)
    commands.register(app)
    shortcuts.register(app)
    actions.register(app)
    if "oauth_settings" in kwargs:
        app.enable_token_revocation_listeners()
    app.error(on_error)
    return app


async def on_error(error: Exception, body: dict[str, Any], context: Any) -> None:
    """Last resort: log the failure (redacted by logsafe) and tell the user privately, without a trace."""
    log.error("listener failed: %s", type(error).__name__, exc_info=error)
    client = context.get("client")
    user = (body.get("user") or {}).get("id") if isinstance(body.get("user"), dict) else body.get("user_id")
    channel = (body.get("channel") or {}).get("id") if isinstance(body.get("channel"), dict) else body.get("channel_id")
    event = body.get("event") or {}
    if event.get("type") == "message":
        return  # nobody asked: a passive failure is for the operator's log only
    user = user or event.get("user")
    channel = channel or event.get("channel")
    if client is None or not user or not channel:
        return
    message = blocks.error_message(
        "Something went wrong while handling that; it has been logged. Please try again.", "en"
    )
    try:
        await client.chat_postEphemeral(channel=channel, user=user, **message.kwargs())
    except Exception:
        log.info("could not deliver the error notice")
