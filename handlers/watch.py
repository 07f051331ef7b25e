"""``/acrcheck watch | watches | unwatch``: manage scheduled health posts.

Synchronous on purpose: the command router runs it in a worker thread, and all it does is
validate input and write the watch table. The leader (on whichever replica) picks the
change up within its sync interval; nothing here talks to Slack or Azure.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.config import Settings
from bot.engine.hostguard import UnsafeTarget, registry_target
from bot.scheduler.drift import HEALTHY, MISSING
from bot.scheduler.schedule_spec import ScheduleError, parse_watch_args
from bot.scheduler.service import config_watch_specs
from bot.scheduler.store import Store, store_for_url

__all__ = ["handle_watch_command"]

#: Shortest schedule the Slack command accepts (settings files may go lower).
DEFAULT_MIN_INTERVAL = 300

USAGE = (
    "Usage:\n"
    "• `/acrcheck watch REGISTRY [every 30m | hourly | daily 09:00 [TZ]] [#channel]`\n"
    "• `/acrcheck watches` lists this channel's watches\n"
    "• `/acrcheck unwatch REGISTRY [#channel]`"
)


def _store(settings: Settings) -> Store:
    return store_for_url(settings.database_url)


def _admins_hint(settings: Settings, channel: str) -> str:
    admins = list(dict.fromkeys([*settings.channel(channel).admins, *settings.admins]))
    if not admins:
        return "No admins are configured; ask whoever runs the bot to add you to `admins`."
    return "Ask one of: " + ", ".join(f"<@{a}>" for a in admins[:5])


def _allowed(settings: Settings, channel: str, name: str) -> bool:
    """The channel's registry allowlist (if any) applies to watches as to live checks."""
    allow = settings.channel(channel).registries
    if not allow:
        return True
    names = set()
    for entry in allow:
        try:
            names.add(registry_target(entry).name)
        except UnsafeTarget:
            names.add(entry.strip().lower())
    return name in names


def handle_watch_command(
    subcommand: str,
    args: str,
    *,
    user_id: str,
    channel_id: str,
    settings: Settings,
    is_admin: Callable[[str, str], bool],
) -> tuple[str, bool]:
    """Return (text, ephemeral). Errors are ephemeral; a new or removed watch is told to the channel."""
    sub = subcommand.strip().lower()
    try:
        if sub == "watch":
            return _watch(args, user_id=user_id, channel_id=channel_id, settings=settings, is_admin=is_admin)
        if sub == "unwatch":
            return _unwatch(
                args, user_id=user_id, channel_id=channel_id, settings=settings, is_admin=is_admin
            )
        if sub == "watches":
            return _list(args, user_id=user_id, channel_id=channel_id, settings=settings, is_admin=is_admin)
    except (ScheduleError, UnsafeTarget) as exc:
        return f"{exc}\n{USAGE}", True
    return f"Unknown subcommand `{subcommand}`.\n{USAGE}", True


def _watch(
    args: str, *, user_id: str, channel_id: str, settings: Settings, is_admin: Callable[[str, str], bool]
) -> tuple[str, bool]:
    min_interval = int(getattr(settings, "watch_min_interval", None) or DEFAULT_MIN_INTERVAL)
    parsed = parse_watch_args(args, min_interval_seconds=min_interval)
    target = registry_target(parsed.registry)
    channel = parsed.channel or channel_id
    if not is_admin(user_id, channel):
        return f"Only admins of <#{channel}> can add watches. {_admins_hint(settings, channel)}", True
    if not _allowed(settings, channel, target.name):
        return (
            f"`{target.name}` is not on <#{channel}>'s list of registries the bot may check. "
            "Ask a channel admin to add it.",
            True,
        )
    assert parsed.schedule is not None
    row, created = _store(settings).upsert_watch(
        target.name, channel, parsed.schedule.text, source="slack", created_by=user_id
    )
    verb = "Now watching" if created else "Updated the watch on"
    return (
        f"{verb} *{row.registry}* in <#{channel}>, {row.schedule} (set by <@{user_id}>). "
        "I'll keep one status message there up to date and reply in its thread only when the "
        "status or the network configuration changes.",
        False,
    )


def _unwatch(
    args: str, *, user_id: str, channel_id: str, settings: Settings, is_admin: Callable[[str, str], bool]
) -> tuple[str, bool]:
    parsed = parse_watch_args(args, with_schedule=False)
    target = registry_target(parsed.registry)
    channel = parsed.channel or channel_id
    if not is_admin(user_id, channel):
        return f"Only admins of <#{channel}> can remove watches. {_admins_hint(settings, channel)}", True
    store = _store(settings)
    if not store.remove_watch(target.name, channel):
        return f"*{target.name}* is not watched in <#{channel}>. See `/acrcheck watches`.", True
    note = ""
    if (target.name, channel) in {(r, c) for r, c, _ in config_watch_specs(settings)}:
        note = " It is also declared in the settings file, so it will come back at the next restart."
    return f"Stopped watching *{target.name}* in <#{channel}> (by <@{user_id}>).{note}", False


def _list(
    args: str, *, user_id: str, channel_id: str, settings: Settings, is_admin: Callable[[str, str], bool]
) -> tuple[str, bool]:
    channel = channel_id
    if args.strip():
        parsed = parse_watch_args(f"_ {args}", with_schedule=False)  # only a channel is expected
        channel = parsed.channel or channel_id
    if channel != channel_id and not is_admin(user_id, channel):
        # Another channel's watches (registry names, health) are shown only to that channel's admins.
        return f"Only admins of <#{channel}> can list its watches; run `/acrcheck watches` there.", True
    store = _store(settings)
    rows = store.list_watches(channel)
    if not rows:
        return (
            f"No registries are watched in <#{channel}>. Add one with `/acrcheck watch REGISTRY hourly`.",
            True,
        )
    states = store.get_states([r.id for r in rows])
    lines = [f"Watched in <#{channel}>:"]
    for row in rows:
        state = states.get(row.id)
        obs = state.observation if state else None
        if obs is None:
            status = "not checked yet"
        elif obs.status == HEALTHY:
            status = "healthy"
        elif obs.status == MISSING:
            status = "not found"
        else:
            status = obs.title or obs.status
        origin = " (settings file)" if row.source == "config" else ""
        lines.append(f"• *{row.registry}*: {row.schedule}, {status}{origin}")
    return "\n".join(lines), True
