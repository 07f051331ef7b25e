"""Answers go only where Slack said: a payload's ``response_url`` must be a Slack webhook address.

Interactivity payloads and slash commands carry a ``response_url`` that Bolt's ``respond()``
posts to. Slack always sends ``https://hooks.slack.com/...`` (``hooks.slack-gov.com`` on
GovSlack); the signature check already keeps strangers out, but a payload signed with a leaked
secret, or a mangled one, must not make the bot connect to any address it names (the cloud
metadata service, an internal host). So an address outside Slack's webhook hosts — or outside
the origin of ``ACRCHECK_SLACK_API_URL`` when that points at a proxy or a test fake — is removed
before any listener runs, and ``respond()`` then drops the answer with a warning instead of
connecting.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from bot.config import Settings

log = logging.getLogger("acrcheck.slack")

#: Where Slack's own response URLs point.
SLACK_WEBHOOK_ORIGINS = frozenset({("https", "hooks.slack.com"), ("https", "hooks.slack-gov.com")})


def _origin(url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    host = parts.hostname.lower() + (f":{port}" if port is not None else "")
    return parts.scheme.lower(), host


def allowed_origins(settings: Settings) -> frozenset[tuple[str, str]]:
    """Slack's webhook hosts, plus the origin of the configured Web API URL (a proxy or a fake)."""
    configured = _origin(settings.slack_api_url)
    return SLACK_WEBHOOK_ORIGINS | ({configured} if configured else set())


def is_allowed(url: Any, origins: frozenset[tuple[str, str]]) -> bool:
    """Whether ``url`` is a string whose scheme and host are one of ``origins``."""
    return isinstance(url, str) and _origin(url) in origins


class DroppedRespond:
    """Stands in for ``respond()`` when the payload's response_url was refused: nothing is sent."""

    async def __call__(self, *args: Any, **kwargs: Any) -> None:
        log.warning("an answer for a refused response_url was dropped")


def refuse_foreign_response_url(body: Any, context: Any, origins: frozenset[tuple[str, str]]) -> None:
    """Remove a response_url that is not Slack's from the payload and from Bolt's context."""
    if not isinstance(body, dict):
        return
    urls = [body.get("response_url")] if "response_url" in body else []
    urls += [item.get("response_url") for item in body.get("response_urls") or [] if isinstance(item, dict)]
    if all(is_allowed(url, origins) for url in urls):
        return
    body.pop("response_url", None)
    body.pop("response_urls", None)
    context["response_url"] = None
    context["respond"] = DroppedRespond()
    log.warning("refused a response_url outside Slack's webhook hosts; answers to this payload are dropped")
