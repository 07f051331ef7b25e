"""What changed between two runs of a watch: configuration drift and status transitions.

Pure functions over plain snapshots. A ``RegistryConfig`` (from ``bot.checks.azure``) is
normalised into a ``ConfigSnapshot`` of sorted tuples and strings so that (a) the diff does
not depend on list order or enum classes, and (b) the snapshot can be stored as JSON in
the database and compared after a restart or on another replica. The normaliser reads
attributes leniently (objects, dicts or strings) because ARM payloads, SDK models and
Resource Graph rows spell the same facts differently.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Change",
    "ConfigSnapshot",
    "Observation",
    "diff_configs",
    "diff_observations",
    "snapshot_config",
]

HEALTHY = "healthy"
MISSING = "missing"
ERROR = "error"


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """The network-relevant part of a registry's ARM configuration, order-independent."""

    login_server: str | None = None
    sku: str | None = None
    public_network_access: str | None = None
    default_action: str | None = None
    ip_rules: tuple[str, ...] = ()
    network_rule_bypass_options: str | None = None
    network_rule_bypass_allowed_for_tasks: bool | None = None
    data_endpoint_enabled: bool | None = None
    data_endpoint_host_names: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    private_endpoints: tuple[tuple[str, str], ...] = ()  # (name, connection status)
    provisioning_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigSnapshot:
        known = {f for f in cls.__dataclass_fields__}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            if key == "private_endpoints":
                values[key] = tuple((str(a), str(b)) for a, b in value)
            elif isinstance(value, list):
                values[key] = tuple(value)
            else:
                values[key] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Observation:
    """One run's result for one registry, as stored between runs.

    ``status`` is the engine's cause id (``healthy`` when nothing is wrong), ``missing``
    when the registry is gone from ARM / Resource Graph, or ``error`` when the check
    itself could not run. ``problems`` maps a failing check (``dns:host``) to its detail,
    which is how probe-level drift such as a data endpoint missing from DNS is seen.
    """

    status: str
    title: str = ""
    summary: str = ""
    problems: Mapping[str, str] = field(default_factory=dict)
    config: ConfigSnapshot | None = None

    @property
    def healthy(self) -> bool:
        return self.status == HEALTHY

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "title": self.title,
            "summary": self.summary,
            "problems": dict(self.problems),
            "config": self.config.to_dict() if self.config else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        config = data.get("config")
        return cls(
            status=str(data.get("status", ERROR)),
            title=str(data.get("title", "")),
            summary=str(data.get("summary", "")),
            problems=dict(data.get("problems") or {}),
            config=ConfigSnapshot.from_dict(config) if config else None,
        )


@dataclass(frozen=True, slots=True)
class Change:
    """One human-readable difference; ``field`` keys tests and metrics, ``text`` goes to Slack."""

    field: str
    text: str
    severity: str = "info"  # "info" | "warn" (the change makes access stricter or breaks it)


# --- normalisation -------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    return str(value)


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return None


def _as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "enabled"}
    return bool(value)


def _ip_rule(rule: Any) -> str:
    if isinstance(rule, str):
        return rule
    value = _get(rule, "ip_address_or_range", "value", "address", "ip")
    return str(value)


def _region(replica: Any) -> str:
    if isinstance(replica, str):
        return replica.lower()
    return str(_get(replica, "location", "region", "name")).lower()


def _private_endpoint(conn: Any) -> tuple[str, str]:
    if isinstance(conn, str):
        return (conn, "Unknown")
    status = _get(conn, "status", "state", "connection_state")
    state_obj = _get(conn, "private_link_service_connection_state")
    if status is None and state_obj is not None:
        status = _get(state_obj, "status")
    name = _get(conn, "name", "private_endpoint_name", "id", "private_endpoint_id")
    if name is None:
        endpoint = _get(conn, "private_endpoint")
        name = _get(endpoint, "id") if endpoint is not None else None
    name_text = str(name or "?").rstrip("/").rsplit("/", 1)[-1]
    return (name_text, _text(status) or "Unknown")


def _sorted(items: Iterable[Any] | None, convert: Any) -> tuple[Any, ...]:
    return tuple(sorted({convert(item) for item in (items or [])}))


def snapshot_config(config: Any) -> ConfigSnapshot | None:
    """Normalise a ``RegistryConfig`` (or an equivalent dict) into a comparable snapshot."""
    if config is None:
        return None
    if isinstance(config, ConfigSnapshot):
        return config
    sku = _get(config, "sku")
    if sku is not None and not isinstance(sku, str | enum.Enum):
        sku = _get(sku, "name", "tier")
    replicas = _get(config, "replications", "regions", "replica_regions")
    return ConfigSnapshot(
        login_server=_text(_get(config, "login_server")),
        sku=_text(sku),
        public_network_access=_text(_get(config, "public_network_access")),
        default_action=_text(_get(config, "default_action")),
        ip_rules=_sorted(_get(config, "ip_rules"), _ip_rule),
        network_rule_bypass_options=_text(_get(config, "network_rule_bypass_options", "bypass_options")),
        network_rule_bypass_allowed_for_tasks=_as_bool(
            _get(config, "network_rule_bypass_allowed_for_tasks", "bypass_for_tasks")
        ),
        data_endpoint_enabled=_as_bool(_get(config, "data_endpoint_enabled")),
        data_endpoint_host_names=_sorted(_get(config, "data_endpoint_host_names"), lambda h: str(h).lower()),
        regions=_sorted(replicas, _region),
        private_endpoints=_sorted(_get(config, "private_endpoint_connections", "private_endpoints"), _private_endpoint),
        provisioning_state=_text(_get(config, "provisioning_state")),
    )


# --- diff ----------------------------------------------------------------------------


def _on_off(value: bool | None) -> str:
    return "unknown" if value is None else ("on" if value else "off")


def _set_changes(
    name: str,
    old: Iterable[str],
    new: Iterable[str],
    added: str,
    removed: str,
    *,
    removed_warn: bool = False,
    added_warn: bool = False,
) -> list[Change]:
    old_set, new_set = set(old), set(new)
    out = [Change(name, added.format(v), "warn" if added_warn else "info") for v in sorted(new_set - old_set)]
    out += [Change(name, removed.format(v), "warn" if removed_warn else "info") for v in sorted(old_set - new_set)]
    return out


_PE_BAD = {"pending", "rejected", "disconnected"}


def diff_configs(old: ConfigSnapshot | None, new: ConfigSnapshot | None) -> list[Change]:
    """Every network-relevant difference between two configurations, in a stable order."""
    if old is None or new is None or old == new:
        return []
    changes: list[Change] = []
    if old.public_network_access != new.public_network_access:
        warn = (new.public_network_access or "").lower() == "disabled"
        changes.append(
            Change(
                "public_network_access",
                f"Public network access switched {old.public_network_access} → {new.public_network_access}"
                + (" (only private endpoints and trusted services can reach it now)" if warn else ""),
                "warn" if warn else "info",
            )
        )
    if old.default_action != new.default_action:
        warn = (new.default_action or "").lower() == "deny"
        changes.append(
            Change(
                "default_action",
                f"Firewall default action changed {old.default_action} → {new.default_action}",
                "warn" if warn else "info",
            )
        )
    changes += _set_changes(
        "ip_rules",
        old.ip_rules,
        new.ip_rules,
        "IP rule added: `{}`",
        "IP rule removed: `{}`",
        removed_warn=True,
    )
    if old.network_rule_bypass_options != new.network_rule_bypass_options:
        off = (new.network_rule_bypass_options or "").lower() == "none"
        changes.append(
            Change(
                "network_rule_bypass_options",
                f"Trusted Azure services bypass {'turned off' if off else 'turned on'} "
                f"({old.network_rule_bypass_options} → {new.network_rule_bypass_options})",
                "warn" if off else "info",
            )
        )
    if old.network_rule_bypass_allowed_for_tasks != new.network_rule_bypass_allowed_for_tasks:
        changes.append(
            Change(
                "network_rule_bypass_allowed_for_tasks",
                f"ACR Tasks network bypass turned {_on_off(new.network_rule_bypass_allowed_for_tasks)} "
                f"(was {_on_off(old.network_rule_bypass_allowed_for_tasks)})",
                "warn" if new.network_rule_bypass_allowed_for_tasks is False else "info",
            )
        )
    if old.data_endpoint_enabled != new.data_endpoint_enabled:
        changes.append(
            Change(
                "data_endpoint_enabled",
                f"Dedicated data endpoints turned {_on_off(new.data_endpoint_enabled)} "
                "(clients' firewall rules must allow the new data host names)",
                "warn",
            )
        )
    changes += _set_changes(
        "data_endpoint_host_names",
        old.data_endpoint_host_names,
        new.data_endpoint_host_names,
        "Data endpoint added: `{}`",
        "Data endpoint removed: `{}`",
        added_warn=True,
    )
    changes += _set_changes(
        "regions",
        old.regions,
        new.regions,
        "Replica added in `{}`",
        "Replica removed from `{}`",
        added_warn=True,
    )
    changes += _diff_private_endpoints(old.private_endpoints, new.private_endpoints)
    if old.sku != new.sku:
        changes.append(Change("sku", f"SKU changed {old.sku} → {new.sku}", "info"))
    if old.login_server != new.login_server:
        changes.append(Change("login_server", f"Login server changed `{old.login_server}` → `{new.login_server}`"))
    if old.provisioning_state != new.provisioning_state:
        warn = (new.provisioning_state or "").lower() == "failed"
        changes.append(
            Change(
                "provisioning_state",
                f"Provisioning state {old.provisioning_state} → {new.provisioning_state}",
                "warn" if warn else "info",
            )
        )
    return changes


def _diff_private_endpoints(old: tuple[tuple[str, str], ...], new: tuple[tuple[str, str], ...]) -> list[Change]:
    old_map, new_map = dict(old), dict(new)
    changes: list[Change] = []
    for name in sorted(new_map.keys() - old_map.keys()):
        state = new_map[name]
        bad = state.lower() in _PE_BAD
        changes.append(
            Change(
                "private_endpoints",
                f"Private endpoint `{name}` added ({state})" + (": traffic through it is refused" if bad else ""),
                "warn" if bad else "info",
            )
        )
    for name in sorted(old_map.keys() - new_map.keys()):
        changes.append(Change("private_endpoints", f"Private endpoint `{name}` removed", "warn"))
    for name in sorted(old_map.keys() & new_map.keys()):
        before, after = old_map[name], new_map[name]
        if before != after:
            bad = after.lower() in _PE_BAD
            changes.append(
                Change(
                    "private_endpoints",
                    f"Private endpoint `{name}` is now {after} (was {before})"
                    + (": traffic through it is refused" if bad else ""),
                    "warn" if bad else "info",
                )
            )
    return changes


def _diff_problems(old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    changes: list[Change] = []
    for key in sorted(new.keys() - old.keys()):
        check, _, target = key.partition(":")
        changes.append(Change("problems", f"New failing {check} check for `{target}`: {new[key]}", "warn"))
    for key in sorted(old.keys() - new.keys()):
        check, _, target = key.partition(":")
        changes.append(Change("problems", f"{check} check for `{target}` passes again", "info"))
    return changes


def diff_observations(old: Observation | None, new: Observation) -> list[Change]:
    """Status transition plus configuration and probe drift; empty when nothing changed.

    With no previous observation there is nothing to compare: the first run only sets a
    baseline (the status message itself says what the state is).
    """
    if old is None:
        return []
    changes: list[Change] = []
    if old.status != new.status:
        changes.append(_status_change(old, new))
    changes += diff_configs(old.config, new.config)
    if old.status != MISSING and new.status != MISSING:
        changes += _diff_problems(old.problems, new.problems)
    return changes


def _status_change(old: Observation, new: Observation) -> Change:
    if new.status == MISSING:
        return Change(
            "status",
            "The registry is no longer found (ARM 404 / not in Resource Graph): deleted, renamed, "
            "or the bot lost read access. I'll stay quiet until it is back.",
            "warn",
        )
    if old.status == MISSING:
        return Change("status", "The registry is found again.", "info")
    if new.healthy:
        return Change("status", f"Resolved: {old.title or old.status} has cleared.", "info")
    if old.healthy:
        return Change("status", f"Problem detected: {new.title or new.status}", "warn")
    return Change("status", f"Problem changed: {old.title or old.status} → {new.title or new.status}", "warn")
