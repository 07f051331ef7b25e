"""Slack text for watch posts: the in-place status message, change replies and the digest.

Kept pure and separate from posting so the exact text can be compared with what was last
posted: the status message is edited only when this text changes, so it must not embed
anything that changes every run (such as "last checked at").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.scheduler.drift import HEALTHY, MISSING, Change, Observation

__all__ = ["render_change_reply", "render_digest", "render_status"]

_ICON = {HEALTHY: ":large_green_circle:", MISSING: ":grey_question:"}
_MAX_SUMMARY = 1500


def _when(moment: datetime) -> str:
    """Slack date token: each reader sees their own time zone; fallback text is UTC."""
    ts = int(moment.timestamp())
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{ts}^{{date_short_pretty}} {{time}}|{fallback}>"


def render_status(registry: str, obs: Observation, *, since: datetime, schedule: str, vantage: str) -> str:
    """The one status message per watched registry, edited in place."""
    icon = _ICON.get(obs.status, ":red_circle:")
    if obs.status == HEALTHY:
        head = f"{icon} *{registry}*: healthy"
    elif obs.status == MISSING:
        head = f"{icon} *{registry}*: not found (ARM 404 / not in Resource Graph)"
    else:
        head = f"{icon} *{registry}*: {obs.title or obs.status}"
    lines = [f"{head} (since {_when(since)})"]
    if obs.summary and obs.status != HEALTHY:
        lines.append(obs.summary[:_MAX_SUMMARY])
    lines.append(f"_Watched {schedule}; checks run from {vantage}. Changes are posted in this thread._")
    return "\n".join(lines)


def render_change_reply(registry: str, changes: Sequence[Change], obs: Observation) -> str:
    """Thread reply listing what changed since the previous run."""
    warn = any(c.severity == "warn" for c in changes)
    header = f"{':warning:' if warn else ':information_source:'} *{registry}* changed:"
    body = [f"• {c.text}" for c in changes]
    if obs.status not in (HEALTHY, MISSING) and obs.summary and any(c.field == "status" for c in changes):
        body.append(obs.summary[:_MAX_SUMMARY])
    return "\n".join([header, *body])


def render_digest(channel_rows: Sequence[tuple[str, Observation | None]]) -> str:
    """Daily per-channel digest: counts, then only the registries that need attention."""
    total = len(channel_rows)
    bad = [(r, o) for r, o in channel_rows if o is not None and o.status != HEALTHY]
    unknown = [r for r, o in channel_rows if o is None]
    lines = [f":clipboard: Daily ACR watch digest: {total - len(bad) - len(unknown)}/{total} healthy"]
    for registry, obs in bad:
        assert obs is not None
        label = "not found" if obs.status == MISSING else (obs.title or obs.status)
        lines.append(f"• *{registry}*: {label}")
    if unknown:
        lines.append(f"• not checked yet: {', '.join(unknown)}")
    return "\n".join(lines)
