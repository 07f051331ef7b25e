"""Validate the bot's settings without connecting anywhere (``serve --check-config``, ``doctor``).

Lives in the service layer because both the CLI and ``acrcheck doctor`` ask it; the CLI
imports the service, never the other way round.
"""

from __future__ import annotations

import importlib

from bot.config import Settings


def mask_url(url: str) -> str:
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
        summary.append(f"database: {mask_url(settings.database_url)}")
    except ImportError:
        errors.append(
            "database_url is PostgreSQL but the psycopg driver is not installed (pip install 'psycopg[binary]')."
        )
    except Exception as exc:
        errors.append(f"database_url is not a valid database URL ({type(exc).__name__}).")

    from bot.engine.hostguard import UnsafeTarget, registry_target

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
