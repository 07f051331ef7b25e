"""Access control in one place: channel modes, thresholds, allowlists, admins, rate limits.

Settings give the defaults; channel admins can override mode, threshold and allow-bots at
runtime (stored in the database, so every replica sees them). Every registry name and
every host read from a paste passes the SSRF guard here before any DNS query or
connection, and must be on the channel's allowlist when it has one.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Literal

from bot.config import ChannelMode, Settings
from bot.engine.hostguard import RegistryTarget, UnsafeTarget, registry_target
from bot.engine.models import Diagnosis
from bot.store import Store

#: Keys an admin may set with ``/acrcheck config``; values are validated in :func:`parse_override`.
OVERRIDE_KEYS = ("mode", "threshold", "allow_bots")
MODES: tuple[ChannelMode, ...] = ("passive", "mention-only", "off")


@dataclass(slots=True)
class ChannelPolicy:
    """The effective behaviour of the bot in one channel."""

    channel_id: str
    mode: ChannelMode
    threshold: float
    allow_bots: bool
    mentions: bool = True  # False only when the settings file turns @mention answers off here
    registries: list[str] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)


class PolicyError(Exception):
    """A refusal whose message is shown to the user (ephemeral); never a crash."""


def effective_policy(settings: Settings, channel_id: str, overrides: dict[str, str]) -> ChannelPolicy:
    """Merge settings and stored overrides; stored overrides win (admins changed them later)."""
    base = settings.channel(channel_id)
    mode: ChannelMode = base.mode
    threshold = base.threshold if base.threshold is not None else settings.reply_threshold
    allow_bots = base.allow_bots
    if overrides.get("mode") in MODES:
        mode = overrides["mode"]  # type: ignore[assignment]
    if "threshold" in overrides:
        with contextlib.suppress(ValueError):
            threshold = min(1.0, max(0.0, float(overrides["threshold"])))
    if "allow_bots" in overrides:
        allow_bots = overrides["allow_bots"] == "true"
    return ChannelPolicy(
        channel_id=channel_id,
        mode=mode,
        threshold=threshold,
        allow_bots=allow_bots,
        mentions=base.mentions,
        registries=list(base.registries),
        subscriptions=list(base.subscriptions),
        admins=list(base.admins),
    )


def load_policy(settings: Settings, store: Store, channel_id: str) -> ChannelPolicy:
    """Blocking: read overrides and build the policy (call through ``Store.run``)."""
    return effective_policy(settings, channel_id, store.overrides(channel_id) if channel_id else {})


def is_admin(settings: Settings, user_id: str, channel_id: str) -> bool:
    """Workspace admins from settings, or admins listed for this channel."""
    return user_id in settings.admins or user_id in settings.channel(channel_id).admins


def may_mute(settings: Settings, user_id: str, channel_id: str) -> bool:
    """Muting silences a cause for the whole channel: admins only, unless the settings open it to members."""
    return settings.members_can_mute or is_admin(settings, user_id, channel_id)


def admin_mentions(settings: Settings, channel_id: str) -> str:
    """Who to ask for an admin-only change here, as Slack mentions."""
    admins = sorted({*settings.admins, *settings.channel(channel_id).admins})
    return ", ".join(f"<@{a}>" for a in admins) if admins else "the admins listed in ACRCHECK_ADMINS"


def parse_override(key: str, value: str) -> tuple[str, str]:
    """Validate ``/acrcheck config KEY VALUE``; returns the normalised (key, value) to store."""
    key = key.lower().replace("-", "_")
    value = value.strip().lower()
    if key == "mode":
        if value not in MODES:
            raise PolicyError("mode must be one of: passive, mention-only, off")
        return key, value
    if key == "threshold":
        try:
            number = float(value)
        except ValueError:
            raise PolicyError("threshold must be a number between 0 and 1, e.g. 0.6") from None
        if not 0.0 <= number <= 1.0:
            raise PolicyError("threshold must be a number between 0 and 1, e.g. 0.6")
        return key, f"{number:g}"
    if key == "allow_bots":
        if value in ("on", "true", "yes", "1"):
            return key, "true"
        if value in ("off", "false", "no", "0"):
            return key, "false"
        raise PolicyError("allow-bots must be on or off")
    raise PolicyError("settable keys: mode, threshold, allow-bots")


def _allow_key(entry: str) -> str:
    """Allowlist entries may be short names or login servers; compare on the short name + cloud."""
    try:
        target = registry_target(entry)
    except UnsafeTarget:
        return entry.strip().lower()
    return f"{target.name}@{target.cloud}"


def guard_registry(value: str, policy: ChannelPolicy) -> RegistryTarget:
    """SSRF guard, then the channel allowlist; raises :class:`PolicyError` with user-facing text."""
    try:
        target = registry_target(value)
    except UnsafeTarget as exc:
        raise PolicyError(str(exc)) from None
    if policy.registries:
        allowed = {_allow_key(entry) for entry in policy.registries}
        if f"{target.name}@{target.cloud}" not in allowed:
            raise PolicyError(
                f"`{target.login_server}` is not on this channel's list of registries the bot may check "
                f"({', '.join(sorted(policy.registries))}). Ask a channel admin to add it."
            )
    return target


#: Anything in a paste that mentions an Azure registry suffix, with its surrounding host characters
#: (userinfo, look-alike suffixes, non-ASCII letters), so the guard sees what the user really wrote.
_HOST_CHARS = r"[^\s\"'<>()\[\]{}|,;`]{0,300}"
_AZURE_TOKEN = re.compile(_HOST_CHARS + r"azurecr\." + _HOST_CHARS, re.IGNORECASE)
_MAX_PASTE_TOKENS = 50


def _authority(token: str) -> str:
    """The host part of a URL-ish token: no scheme, path, image reference or the usual :443."""
    if "://" in token:
        token = token.split("://", 1)[1]
    token = token.split("/", 1)[0].rstrip(".:")
    for port in (":443", ":80"):
        if token.endswith(port):
            token = token[: -len(port)]
    return token


def paste_hosts(diagnosis: Diagnosis) -> list[str]:
    """Every registry host a live check of this paste could touch, and every ACR-like token in it."""
    facts = diagnosis.facts
    hosts: list[str] = []
    for match in _AZURE_TOKEN.finditer(diagnosis.redacted_text[:200_000]):
        host = _authority(match.group(0))
        if host and host not in hosts:
            hosts.append(host)
        if len(hosts) >= _MAX_PASTE_TOKENS:
            break
    for value in (facts.login_server, facts.registry_host, *facts.data_endpoints, *facts.privatelink_hosts):
        if value and value not in hosts:
            hosts.append(value)
    for fact in facts.hosts:
        if fact.kind != "other" and fact.host not in hosts:
            hosts.append(fact.host)
    if facts.registry and not hosts:
        hosts.append(facts.registry)
    return hosts


def guard_paste(diagnosis: Diagnosis, policy: ChannelPolicy) -> tuple[list[RegistryTarget], list[str]]:
    """Guard each host of a paste; returns (accepted targets, refusal messages).

    A live check of a paste runs only when every host passes: one look-alike host
    (``myreg.azurecr.io.evil.com``) is enough to keep the bot off the network.
    """
    targets: list[RegistryTarget] = []
    refusals: list[str] = []
    for host in paste_hosts(diagnosis):
        try:
            targets.append(guard_registry(host, policy))
        except PolicyError as exc:
            refusals.append(f"`{host}`: {exc}")
    return targets, refusals


RateScope = Literal["user", "channel"]


class LocalRateWindow:
    """This replica's own count of the same fixed one-minute windows, kept in memory.

    It answers on the event loop without any I/O, so a slash command can be refused (or
    acked) at once; the shared counters in the database (:func:`within_rate`) are counted
    right after the ack and catch what other replicas let through. Memory is bounded: the
    counts are dropped when the minute turns.
    """

    __slots__ = ("_hits", "_minute")

    def __init__(self) -> None:
        self._minute = 0
        self._hits: dict[str, int] = {}

    def hit(self, bucket: str, limit: int, *, now: float | None = None) -> bool:
        """Count one action in ``bucket``; True while this minute's count is within ``limit``."""
        minute = int((now or time.time()) // 60)
        if minute != self._minute:
            self._minute = minute
            self._hits.clear()
        count = self._hits.get(bucket, 0) + 1
        self._hits[bucket] = count
        return count <= limit

    def within(self, settings: Settings, *, user_id: str, channel_id: str) -> RateScope | None:
        """The same rule as :func:`within_rate` (user first, then channel), in memory."""
        if user_id and not self.hit(f"user:{user_id}", settings.user_rate_per_minute):
            return "user"
        if channel_id and not self.hit(f"channel:{channel_id}", settings.channel_rate_per_minute):
            return "channel"
        return None


def within_rate(settings: Settings, store: Store, *, user_id: str, channel_id: str) -> RateScope | None:
    """Blocking: count one action; returns the scope that is over its limit, or None.

    Counters live in the database (fixed one-minute windows) so the limit holds across
    replicas and restarts.
    """
    if user_id and not store.hit_rate(f"user:{user_id}", settings.user_rate_per_minute):
        return "user"
    if channel_id and not store.hit_rate(f"channel:{channel_id}", settings.channel_rate_per_minute):
        return "channel"
    return None
