"""Azure side of the live checks: credentials, registry lookup and network configuration from ARM.

The registry's own configuration is what separates "the registry firewall denies you" from
"your network blocks the registry": public network access, the IP allow list, the bypass
switches for trusted services and Tasks, private endpoint connection states and the data
endpoints of every replica. This module reads them and states each as Evidence.

* The credential is chosen explicitly (``settings.azure_credential``); ``none`` means no ARM
  calls at all — ``DefaultAzureCredential`` is never built, because its IMDS probe can hang
  behind a silent proxy. Every ``get_token`` is bounded by ``settings.token_timeout``.
* The registry is located with one Resource Graph query (by name or login server, across
  ``settings.subscriptions`` or everything the identity can read), then ``registries.get`` is the
  source of truth, with replications and private endpoint connections read concurrently.
* Failures (no credential, 403, 404, 429 with Retry-After, 5xx, timeouts) become Evidence lines,
  never exceptions: a diagnosis with partial facts beats a stack trace.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport

from bot.checks.probe import CaBundleError, build_ssl_context
from bot.config import Settings
from bot.engine.hostguard import RegistryTarget
from bot.engine.live_facts import id_part
from bot.engine.models import Evidence, Status

log = logging.getLogger(__name__)
T = TypeVar("T")

REGISTRY_TYPE = "microsoft.containerregistry/registries"
_BULK_CHUNK = 1000


# ============================================================================ credentials


class CredentialConfigError(ValueError):
    """The selected credential mode cannot be built (missing token, missing environment)."""


class StaticTokenCredential:
    """Returns ``settings.azure_token`` for every scope (CI, demos, short-lived tokens from elsewhere)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenCredential(<redacted>)"

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


class TimeoutCredential:
    """Wraps a credential so a token request can never outlive ``timeout`` seconds."""

    def __init__(self, inner: Any, timeout: float, mode: str) -> None:
        self._inner = inner
        self._timeout = timeout
        self.mode = mode

    def __repr__(self) -> str:
        return f"TimeoutCredential({self.mode}, {self._timeout:g}s)"

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            async with asyncio.timeout(self._timeout):
                token: AccessToken = await self._inner.get_token(*scopes, **kwargs)
                return token
        except TimeoutError as exc:
            raise ClientAuthenticationError(
                message=f"{self.mode} credential gave no token within {self._timeout:g} s"
            ) from exc

    async def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> TimeoutCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


def make_credential(settings: Settings) -> TimeoutCredential | None:
    """Build the configured async credential, or None for ``none``. Raises CredentialConfigError."""
    mode = settings.azure_credential
    if mode == "none":
        return None
    inner: Any
    try:
        if mode == "token":
            if settings.azure_token is None or not settings.azure_token.get_secret_value():
                raise CredentialConfigError("azure_credential is 'token' but ACRCHECK_AZURE_TOKEN is not set")
            inner = StaticTokenCredential(settings.azure_token.get_secret_value())
        elif mode == "cli":
            from azure.identity.aio import AzureCliCredential

            inner = AzureCliCredential(process_timeout=max(1, int(settings.token_timeout)))
        elif mode == "managed-identity":
            from azure.identity.aio import ManagedIdentityCredential

            inner = ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID") or None)
        elif mode == "workload-identity":
            from azure.identity.aio import WorkloadIdentityCredential

            inner = WorkloadIdentityCredential()
        elif mode == "environment":
            from azure.identity.aio import EnvironmentCredential

            inner = EnvironmentCredential()
        else:  # pragma: no cover - the settings Literal prevents this
            raise CredentialConfigError(f"unknown credential mode {mode!r}")
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CredentialConfigError):
            raise
        raise CredentialConfigError(f"{mode} credential is not configured: {exc}") from exc
    return TimeoutCredential(inner, settings.token_timeout, mode)


def arm_scope(settings: Settings) -> str:
    return settings.arm_endpoint.rstrip("/") + "/.default"


def make_transport(settings: Settings) -> AioHttpTransport:
    """aiohttp transport trusting the system store plus ``settings.ca_bundle`` (not one or the other)."""
    connector = aiohttp.TCPConnector(ssl=build_ssl_context(settings.ca_bundle))
    session = aiohttp.ClientSession(connector=connector, trust_env=True)
    return AioHttpTransport(session=session, session_owner=True)


def _client_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "transport": make_transport(settings),
        "credential_scopes": [arm_scope(settings)],
        "retry_total": 0,  # retries are ours: bounded by the deadline, honouring Retry-After
        "logging_enable": False,
    }


# ============================================================================ configuration model


@dataclass(frozen=True, slots=True)
class Replication:
    region: str
    region_endpoint_enabled: bool | None = None
    status: str = ""
    provisioning_state: str = ""


@dataclass(frozen=True, slots=True)
class PrivateEndpointConnection:
    name: str
    status: str  # Approved | Pending | Rejected | Disconnected
    description: str = ""
    private_endpoint_id: str = ""
    provisioning_state: str = ""
    actions_required: str = ""


def privatelink_zone(fqdn: str) -> str:
    """The private DNS zone of a registry FQDN: ``privatelink.azurecr.io`` (or ``.cn`` / ``.us``)."""
    return "privatelink." + ".".join(fqdn.lower().rstrip(".").split(".")[-2:])


def privatelink_record_name(fqdn: str) -> str:
    """The record set name in that zone: ``myreg`` or ``myreg.eastus.data``."""
    labels = fqdn.lower().rstrip(".").split(".")
    return ".".join(labels[:-2])


@dataclass(frozen=True, slots=True)
class PrivateEndpointDns:
    """What a private endpoint says DNS should answer: each FQDN of the registry and its private IP.

    Read from the endpoint's network interface (``ipConfigurations[].privateLinkConnectionProperties``,
    the source ``az acr check-health --vnet`` uses) and its private DNS zone groups (which zone
    holds the records). ``error`` says why it could not be read (a missing permission, a deleted
    endpoint); the records are then unknown, not empty.
    """

    name: str
    resource_id: str
    resource_group: str = ""
    subnet_id: str = ""
    records: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (fqdn, private IPs)
    zones: tuple[str, ...] = ()  # private DNS zone resource ids of its zone groups
    error: str = ""

    def ips_for(self, fqdn: str) -> tuple[str, ...]:
        fqdn = fqdn.lower().rstrip(".")
        return next((ips for name, ips in self.records if name == fqdn), ())

    def zone_for(self, fqdn: str) -> tuple[str, str]:
        """(zone name, zone resource group) holding ``fqdn``'s privatelink record."""
        zone_name = privatelink_zone(fqdn)
        for zone_id in self.zones:
            if zone_id.lower().rstrip("/").endswith("/" + zone_name):
                return zone_name, id_part(zone_id, "resourceGroups")
        return zone_name, ""


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """A registry's network-relevant configuration; immutable so the scheduler can diff two reads."""

    name: str
    login_server: str
    resource_id: str = ""
    subscription_id: str = ""
    resource_group: str = ""
    location: str = ""
    sku: str = ""
    public_network_access: str = "Enabled"
    default_action: str = "Allow"
    ip_rules: tuple[str, ...] = ()
    bypass_options: str = "AzureServices"
    bypass_for_tasks: bool | None = None
    data_endpoint_enabled: bool = False
    data_endpoint_host_names: tuple[str, ...] = ()
    replications: tuple[Replication, ...] = ()
    private_endpoints: tuple[PrivateEndpointConnection, ...] = ()
    provisioning_state: str = ""
    anonymous_pull_enabled: bool | None = None
    source: str = field(default="arm", compare=False)  # "arm" | "resource-graph"
    #: DNS each private endpoint expects (read from Microsoft.Network; empty when not read).
    private_endpoint_dns: tuple[PrivateEndpointDns, ...] = field(default=(), compare=False)

    @property
    def suffix(self) -> str:
        return self.login_server.split(".", 1)[1] if "." in self.login_server else "azurecr.io"

    @property
    def regions(self) -> tuple[str, ...]:
        seen: list[str] = [self.location] if self.location else []
        for rep in self.replications:
            if rep.region and rep.region not in seen:
                seen.append(rep.region)
        return tuple(seen)

    @property
    def network_restricted(self) -> bool:
        return self.public_network_access.lower() == "disabled" or self.default_action.lower() == "deny"

    def data_endpoints(self) -> list[str]:
        """FQDNs clients must reach for layers: the host names ARM lists, else one per region."""
        if self.data_endpoint_host_names:
            return [h.lower() for h in self.data_endpoint_host_names]
        if not self.data_endpoint_enabled:
            return []
        label = self.login_server.split(".", 1)[0]
        return [f"{label}.{region}.data.{self.suffix}" for region in self.regions]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def diff(self, other: RegistryConfig) -> dict[str, tuple[Any, Any]]:
        """Fields that differ, as ``{field: (self value, other value)}`` (``source`` and the DNS map ignored)."""
        changes: dict[str, tuple[Any, Any]] = {}
        for f in fields(self):
            if f.name in ("source", "private_endpoint_dns"):
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine != theirs:
                changes[f.name] = (mine, theirs)
        return changes

    @classmethod
    def from_arm(
        cls,
        resource: Mapping[str, Any],
        *,
        replications: Iterable[Mapping[str, Any]] | None = None,
        replica_regions: Iterable[str] | None = None,
        pe_connections: Iterable[Mapping[str, Any]] | None = None,
        source: str = "arm",
    ) -> RegistryConfig:
        """Build from ARM/Resource Graph JSON (REST field names, as ``Registry.as_dict()`` returns)."""
        props: Mapping[str, Any] = resource.get("properties") or {}
        rule_set: Mapping[str, Any] = props.get("networkRuleSet") or {}
        rid = str(resource.get("id", ""))
        sku = resource.get("sku") or {}
        reps: list[Replication] = []
        for rep in replications or ():
            rprops = rep.get("properties") or {}
            reps.append(
                Replication(
                    region=_norm_region(rep.get("location", "")),
                    region_endpoint_enabled=rprops.get("regionEndpointEnabled"),
                    status=str((rprops.get("status") or {}).get("displayStatus", "")),
                    provisioning_state=str(rprops.get("provisioningState", "")),
                )
            )
        for region in replica_regions or ():
            if region and _norm_region(region) not in {r.region for r in reps}:
                reps.append(Replication(region=_norm_region(region)))
        pes_source = pe_connections if pe_connections is not None else props.get("privateEndpointConnections") or []
        pes = tuple(_pe_from_json(pe) for pe in pes_source)
        return cls(
            name=str(resource.get("name", "")).lower(),
            login_server=str(props.get("loginServer", "")).lower(),
            resource_id=rid,
            subscription_id=str(resource.get("subscriptionId") or id_part(rid, "subscriptions")),
            resource_group=str(resource.get("resourceGroup") or id_part(rid, "resourceGroups")),
            location=_norm_region(str(resource.get("location", ""))),
            sku=str(sku.get("name", "")) if isinstance(sku, Mapping) else str(sku),
            public_network_access=str(props.get("publicNetworkAccess") or "Enabled"),
            default_action=str(rule_set.get("defaultAction") or "Allow"),
            ip_rules=tuple(str(r.get("value", "")) for r in rule_set.get("ipRules") or () if r.get("value")),
            bypass_options=str(props.get("networkRuleBypassOptions") or "AzureServices"),
            bypass_for_tasks=props.get("networkRuleBypassAllowedForTasks"),
            data_endpoint_enabled=bool(props.get("dataEndpointEnabled")),
            data_endpoint_host_names=tuple(str(h).lower() for h in props.get("dataEndpointHostNames") or ()),
            replications=tuple(sorted(reps, key=lambda r: r.region)),
            private_endpoints=pes,
            provisioning_state=str(props.get("provisioningState", "")),
            anonymous_pull_enabled=props.get("anonymousPullEnabled"),
            source=source,
        )


def _norm_region(region: str) -> str:
    return region.replace(" ", "").lower()


def _pe_from_json(pe: Mapping[str, Any]) -> PrivateEndpointConnection:
    props = pe.get("properties") or {}
    state = props.get("privateLinkServiceConnectionState") or {}
    return PrivateEndpointConnection(
        name=str(pe.get("name", "")),
        status=str(state.get("status", "")),
        description=str(state.get("description", "") or ""),
        private_endpoint_id=str((props.get("privateEndpoint") or {}).get("id", "")),
        provisioning_state=str(props.get("provisioningState", "")),
        actions_required=str(state.get("actionsRequired", "") or ""),
    )


# ============================================================================ IP rules


def match_ip_rule(ip: str, rules: Iterable[str]) -> str | None:
    """The first allow rule (IP or CIDR) that contains ``ip``, or None."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    for rule in rules:
        try:
            if address in ipaddress.ip_network(rule.strip(), strict=False):
                return rule
        except ValueError:
            continue
    return None


def ip_rule_evidence(config: RegistryConfig, ip: str, settings: Settings, *, source: str) -> Evidence:
    """Would the registry's public endpoint let ``ip`` in? (``source`` says where the IP came from)."""
    target = config.login_server or config.name
    data: dict[str, Any] = {"client_ip": ip, "ip_rules": list(config.ip_rules), "ip_source": source}
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return Evidence("arm", target, settings.vantage_name, Status.SKIPPED, f"'{ip}' is not an IP address", data)
    if config.public_network_access.lower() == "disabled":
        detail = f"client IP {ip} ({source}) cannot reach the public endpoint: public network access is Disabled"
        return Evidence("arm", target, settings.vantage_name, Status.FAIL, detail, data, 0.0, ["arm.ip_not_allowed"])
    if config.default_action.lower() != "deny":
        detail = f"client IP {ip} ({source}) is allowed: the registry accepts all networks (defaultAction Allow)"
        return Evidence("arm", target, settings.vantage_name, Status.OK, detail, data, 0.0, ["arm.ip_allowed"])
    rule = match_ip_rule(ip, config.ip_rules)
    if rule is not None:
        data["matched_rule"] = rule
        detail = f"client IP {ip} ({source}) is inside allowed rule {rule}"
        return Evidence("arm", target, settings.vantage_name, Status.OK, detail, data, 0.0, ["arm.ip_allowed"])
    rules = ", ".join(config.ip_rules) or "none"
    detail = f"client IP {ip} ({source}) is not in the registry's IP allow list ({rules})"
    return Evidence("arm", target, settings.vantage_name, Status.FAIL, detail, data, 0.0, ["arm.ip_not_allowed"])


# ============================================================================ evidence from a config


def config_evidence(config: RegistryConfig, settings: Settings, duration_ms: float) -> list[Evidence]:
    """One Evidence line per network-relevant setting, with ``arm.*`` findings."""
    target = config.login_server or config.name
    out: list[Evidence] = []

    def add(status: Status, detail: str, findings: list[str], **data: Any) -> None:
        out.append(Evidence("arm", target, settings.vantage_name, status, detail, data, duration_ms, findings))

    add(
        Status.OK,
        f"registry {config.name} found in resource group {config.resource_group} "
        f"(subscription {config.subscription_id}), {config.location}; login server {config.login_server}",
        ["arm.found"],
        resource_id=config.resource_id,
        login_server=config.login_server,
        location=config.location,
        config=config.to_dict(),
    )
    premium = config.sku.lower() == "premium"
    add(
        Status.OK,
        f"SKU {config.sku or 'unknown'}"
        + ("" if premium else ": IP rules, private endpoints and dedicated data endpoints need Premium"),
        [] if premium else ["arm.not_premium"],
        sku=config.sku,
    )
    if config.public_network_access.lower() == "disabled":
        add(
            Status.WARN,
            "public network access is Disabled: only private endpoints (and trusted services, if allowed) "
            "reach the registry; every public client gets 403 DENIED",
            ["arm.public_access_disabled"],
            public_network_access=config.public_network_access,
        )
    elif config.default_action.lower() == "deny":
        rules = ", ".join(config.ip_rules) or "no IP rules"
        add(
            Status.WARN,
            f"public access limited to selected networks (defaultAction Deny): {rules}",
            ["arm.default_deny"],
            default_action=config.default_action,
            ip_rules=list(config.ip_rules),
        )
    else:
        add(
            Status.OK,
            "public network access Enabled for all networks (defaultAction Allow)",
            [],
            default_action=config.default_action,
        )
    restricted = config.network_restricted
    if config.bypass_options.lower() == "none":
        add(
            Status.WARN if restricted else Status.OK,
            "trusted Microsoft services bypass is off (networkRuleBypassOptions None): Defender, ACI, ML "
            "cannot reach the registry" + ("" if restricted else " (no effect while the registry is open)"),
            ["arm.trusted_services_off"] if restricted else [],
            network_rule_bypass_options=config.bypass_options,
        )
    else:
        add(
            Status.OK,
            f"trusted services bypass: {config.bypass_options}",
            [],
            network_rule_bypass_options=config.bypass_options,
        )
    if config.bypass_for_tasks is not True:
        add(
            Status.WARN if restricted else Status.OK,
            "ACR Tasks bypass is off (networkRuleBypassAllowedForTasks false): since June 2025 Tasks using a "
            "system-assigned identity get 403 on a network-restricted registry"
            + ("" if restricted else " (no effect while the registry is open)"),
            ["arm.tasks_bypass_off"] if restricted else [],
            network_rule_bypass_allowed_for_tasks=config.bypass_for_tasks,
        )
    else:
        add(
            Status.OK,
            "ACR Tasks bypass is on (networkRuleBypassAllowedForTasks true)",
            [],
            network_rule_bypass_allowed_for_tasks=True,
        )
    endpoints = config.data_endpoints()
    if config.data_endpoint_enabled:
        add(
            Status.OK,
            "dedicated data endpoints enabled: clients must reach " + ", ".join(endpoints),
            ["arm.data_endpoint_enabled"],
            data_endpoints=endpoints,
        )
    else:
        add(
            Status.OK,
            "dedicated data endpoints disabled: layers download from the registry's storage account "
            "(*.blob.core.windows.net), which clients must be allowed to reach",
            ["arm.data_endpoint_disabled"],
            data_endpoints=[],
        )
    if config.replications:
        regions = ", ".join(config.regions)
        add(
            Status.OK,
            f"replicated to {len(config.regions)} region(s): {regions}"
            + (f"; data endpoints {', '.join(endpoints)}" if endpoints else ""),
            [],
            replications=[asdict(r) for r in config.replications],
            data_endpoints=endpoints,
        )
    if not config.private_endpoints:
        add(Status.OK, "no private endpoint connections", [], private_endpoints=[])
    for pe in config.private_endpoints:
        status = pe.status.lower()
        finding = {
            "approved": "arm.pe_approved",
            "pending": "arm.pe_pending",
            "rejected": "arm.pe_rejected",
            "disconnected": "arm.pe_disconnected",
        }.get(status)
        level = Status.OK if status == "approved" else Status.FAIL
        note = {
            "pending": ": awaiting approval, no traffic flows until it is approved",
            "rejected": ": rejected by the registry owner, traffic is refused",
            "disconnected": ": the private endpoint was removed, recreate it",
        }.get(status, "")
        add(
            level,
            f"private endpoint connection {pe.name}: {pe.status or 'unknown'}{note}",
            [finding] if finding else [],
            private_endpoint=asdict(pe),
        )
    for dns_map in config.private_endpoint_dns:
        if dns_map.error and not dns_map.records:
            if dns_map.error.startswith("forbidden"):
                scope = f"/subscriptions/{id_part(dns_map.resource_id, 'subscriptions')}/resourceGroups/{dns_map.resource_group}"
                command = grant_command(scope)
                add(
                    Status.WARN,
                    f"private endpoint {dns_map.name}: {cannot_read(scope)} (Microsoft.Network read refused; the "
                    f"expected private IPs are unknown) — {command}",
                    ["arm.permission_missing"],
                    private_endpoint_dns=asdict(dns_map),
                    scope=scope,
                    command=command,
                )
            else:
                add(Status.WARN, f"private endpoint {dns_map.name}: DNS map not read ({dns_map.error})", [],
                    private_endpoint_dns=asdict(dns_map))  # fmt: skip
            continue
        mapping = ", ".join(f"{fqdn} → {'/'.join(ips)}" for fqdn, ips in dns_map.records) or "no FQDNs"
        zones = ", ".join(
            f"{zone_id.rstrip('/').rsplit('/', 1)[-1]} ({id_part(zone_id, 'resourceGroups')})" for zone_id in dns_map.zones
        ) or "none (records are managed by hand or by custom DNS)"
        add(
            Status.OK,
            f"private endpoint {dns_map.name} ({dns_map.resource_group}) expects {mapping}; DNS zone group: {zones}",
            [],
            private_endpoint_dns=asdict(dns_map),
        )
    state = config.provisioning_state
    if state.lower() == "failed":
        add(
            Status.FAIL,
            "provisioning state Failed: the last configuration change did not apply",
            ["arm.provisioning_failed"],
            provisioning_state=state,
        )
    elif state and state.lower() != "succeeded":
        add(Status.WARN, f"provisioning state {state}: a change is in progress", [], provisioning_state=state)
    return out


# ============================================================================ ARM calls


class ArmFailure(Exception):
    """An ARM failure already turned into a finding and a user-facing sentence.

    ``also`` lists further findings (e.g. ``arm.permission_missing`` next to ``arm.forbidden``).
    """

    def __init__(self, finding: str, status: Status, detail: str, *, also: tuple[str, ...] = (), **data: Any) -> None:
        super().__init__(detail)
        self.finding, self.status, self.detail, self.data = finding, status, detail, data
        self.findings = [finding, *also]


# ============================================================================ permissions

#: What the bot's identity needs, by what it reads (docs/deployment.md).
READER = "Reader"
LOGS_READER = "Log Analytics Reader"
_OBJECT_ID_RE = re.compile(r"object id '([0-9a-fA-F-]{36})'")
_SCOPE_RE = re.compile(r"over scope '(/[^'\s]{1,600})'")
_SAFE_SCOPE_RE = re.compile(r"/subscriptions/[A-Za-z0-9][A-Za-z0-9/._-]{0,600}")


def identity_assignee(object_id: str | None = None) -> str:
    """Who to grant: the object id ARM named in its 403, else ``AZURE_CLIENT_ID``, else a placeholder."""
    return object_id or os.environ.get("AZURE_CLIENT_ID") or "<bot-identity-object-id>"


def grant_command(scope: str, *, role: str = READER, assignee: str | None = None) -> str:
    """The exact ``az role assignment create`` that gives the bot's identity ``role`` on ``scope``."""
    role_arg = f'"{role}"' if " " in role else role
    return f"az role assignment create --assignee {assignee or identity_assignee()} --role {role_arg} --scope {scope}"


def cannot_read(scope: str, role: str = READER) -> str:
    """The one sentence every surface (evidence, doctor) uses for a missing permission."""
    return f"the bot's identity cannot read {scope}: grant {role}"


def permission_failure(
    what: str,
    scope: str | list[str],
    *,
    object_id: str | None = None,
    role: str = READER,
    cause: str = "",
    **data: Any,
) -> ArmFailure:
    """An ArmFailure saying which scope(s) the bot cannot read and the command that fixes it."""
    scopes = [scope] if isinstance(scope, str) else list(scope)
    # ARM's text goes into a shell command: plain resource ids only.
    scopes = [sc if _SAFE_SCOPE_RE.fullmatch(sc) else "<scope>" for sc in scopes] or ["<scope>"]
    assignee = identity_assignee(object_id)
    command = " && ".join(grant_command(sc, role=role, assignee=assignee) for sc in scopes)
    scope = ", ".join(scopes)
    because = f" ({cause})" if cause else ""
    detail = f"{what}: {cannot_read(scope, role)}{because} — {command}"
    return ArmFailure(
        "arm.forbidden",
        Status.WARN,
        detail,
        also=("arm.permission_missing",),
        scope=scope,
        role=role,
        command=command,
        assignee=identity_assignee(object_id),
        **data,
    )


def registry_scope(name: str) -> str:
    """The registry's resource id as a shell expression when ARM cannot tell it to the bot."""
    return f"$(az acr show --name {name} --query id --output tsv)"


def subscription_scopes(settings: Settings) -> list[str]:
    return [f"/subscriptions/{sub}" for sub in settings.subscriptions] or ["/subscriptions/<subscription-id>"]


def _first_line(text: str, limit: int = 220) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _translate(exc: BaseException, what: str, settings: Settings, *, scope: str = "") -> ArmFailure:
    """Turn any ARM exception into a finding. ``scope`` is what a 403 means the bot cannot read."""
    if isinstance(exc, ArmFailure):
        return exc
    if isinstance(exc, CaBundleError):
        return ArmFailure("arm.error", Status.FAIL, f"{what}: {exc}")
    if isinstance(exc, ClientAuthenticationError):
        return ArmFailure(
            "arm.no_credential",
            Status.SKIPPED,
            f"no Azure token for {what} ({settings.azure_credential}): " + _first_line(str(exc.message or exc)),
        )
    if isinstance(exc, HttpResponseError):
        code = exc.status_code or 0
        err_code = getattr(getattr(exc, "error", None), "code", None) or ""
        message = _first_line(str(getattr(getattr(exc, "error", None), "message", "") or exc.reason or ""))
        data: dict[str, Any] = {"http_status": code, "error_code": err_code}
        text = f"{exc.message or ''} {getattr(getattr(exc, 'error', None), 'message', '') or ''}"
        if code in (401, 403):
            said = _SCOPE_RE.search(text)
            oid = _OBJECT_ID_RE.search(text)
            return permission_failure(
                what,
                said.group(1) if said else (scope or subscription_scopes(settings)[0]),
                object_id=oid.group(1) if oid else None,
                cause=f"ARM answered {code} {err_code}".rstrip(),
                **data,
            )
        if code == 400 and "novalidsubscriptions" in (text + " " + _detail_codes(exc)).lower():
            return permission_failure(
                what,
                subscription_scopes(settings),
                cause="Resource Graph: no readable subscription among those configured (NoValidSubscriptionsInQueryRequest)",
                **data,
            )
        if code == 404:
            return ArmFailure("arm.not_found", Status.FAIL, f"{what}: not found (HTTP 404 {err_code})", **data)
        if code == 429:
            return ArmFailure("arm.throttled", Status.WARN, f"{what}: ARM is throttling requests (429)", **data)
        if code >= 500:
            return ArmFailure("arm.error", Status.FAIL, f"{what}: ARM error HTTP {code} {err_code}".rstrip(), **data)
        return ArmFailure("arm.error", Status.FAIL, f"{what}: HTTP {code} {err_code} {message}".rstrip(), **data)
    if isinstance(exc, ServiceRequestError | ServiceResponseError | aiohttp.ClientError | OSError):
        return ArmFailure(
            "arm.error",
            Status.FAIL,
            f"{what}: could not reach ARM at {settings.arm_endpoint} ({type(exc).__name__})",
        )
    if isinstance(exc, TimeoutError):
        return ArmFailure("arm.error", Status.FAIL, f"{what}: ARM did not answer in time", timeout=True)
    if isinstance(exc, AzureError):
        return ArmFailure("arm.error", Status.FAIL, f"{what}: {type(exc).__name__}: {_first_line(str(exc))}")
    return ArmFailure("arm.error", Status.FAIL, f"{what}: unexpected {type(exc).__name__}")


def _detail_codes(exc: HttpResponseError) -> str:
    details = getattr(getattr(exc, "error", None), "details", None) or []
    return " ".join(str(getattr(d, "code", "") or "") for d in details)


#: Shortest wait after a 429 whatever Retry-After says: 0, negative or tiny values must not turn
#: into a tight retry loop against ARM.
MIN_RETRY_AFTER = 0.5
#: Wait after a 429 without a usable Retry-After.
DEFAULT_RETRY_AFTER = 1.0


def parse_retry_after(value: str, *, milliseconds: bool = False, now: datetime | None = None) -> float | None:
    """Seconds to wait for a ``Retry-After`` value (delta-seconds or HTTP-date), or None if unusable.

    Non-finite numbers (``nan``, ``inf``) and unparseable text give None; past dates, zero and
    negative values are raised to :data:`MIN_RETRY_AFTER`. ``milliseconds`` is for
    ``x-ms-retry-after-ms`` (a number only).
    """
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        if milliseconds:
            return None
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:  # older Pythons return None instead of raising
            return None
        if when.tzinfo is None:  # "-0000" means UTC without a stated offset (RFC 5322)
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    else:
        if milliseconds:
            seconds /= 1000.0
    if not math.isfinite(seconds):
        return None
    return max(seconds, MIN_RETRY_AFTER)


def _retry_after(exc: HttpResponseError) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    for key in ("Retry-After", "retry-after", "x-ms-retry-after-ms"):
        value = headers.get(key)
        if value:
            seconds = parse_retry_after(value, milliseconds=key.endswith("-ms"))
            if seconds is not None:
                return seconds
            log.info("ignoring unusable %s header from ARM: %.40r", key, value)
    return DEFAULT_RETRY_AFTER


async def with_throttle_retry(call: Callable[[], Awaitable[T]], deadline: float) -> T:
    """Run ``call``; on 429 wait Retry-After and retry while that still fits before ``deadline``."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await call()
        except HttpResponseError as exc:
            if exc.status_code != 429:
                raise
            wait = _retry_after(exc)  # finite and >= MIN_RETRY_AFTER; never slept past the deadline
            if loop.time() + wait >= deadline:
                raise ArmFailure(
                    "arm.throttled",
                    Status.WARN,
                    f"ARM is throttling requests (429, Retry-After {wait:g} s exceeds the time left)",
                    http_status=429,
                    retry_after=wait,
                ) from exc
            log.info("ARM throttled; retrying after %.2fs", wait)
            await asyncio.sleep(wait)


def _kql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def resource_graph_rows(
    query: str, credential: AsyncTokenCredential | TimeoutCredential, settings: Settings, deadline: float
) -> list[dict[str, Any]]:
    """Run a Resource Graph query and follow ``skip_token`` until all rows are read."""
    from azure.mgmt.resourcegraph.aio import ResourceGraphClient
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    rows: list[dict[str, Any]] = []
    async with ResourceGraphClient(credential, base_url=settings.arm_endpoint, **_client_kwargs(settings)) as client:
        skip_token: str | None = None
        while True:
            request = QueryRequest(
                query=query,
                subscriptions=list(settings.subscriptions) or None,
                options=QueryRequestOptions(skip_token=skip_token, top=1000, result_format="objectArray"),
            )

            async def call(request: Any = request) -> Any:
                return await client.resources(request)

            response = await with_throttle_retry(call, deadline)
            rows.extend(row for row in (response.data or []) if isinstance(row, dict))
            skip_token = response.skip_token
            if not skip_token:
                return rows


def _find_query(target: RegistryTarget) -> str:
    return (
        f"resources | where type =~ '{REGISTRY_TYPE}' "
        f"| where name =~ {_kql_string(target.name)} "
        f"or tostring(properties.loginServer) =~ {_kql_string(target.login_server)} "
        "| project id, name, resourceGroup, subscriptionId, location, sku, properties"
    )


def _bulk_query(names: list[str]) -> str:
    listed = ", ".join(_kql_string(n) for n in names)
    return (
        f"resources | where type =~ '{REGISTRY_TYPE}' | where name in~ ({listed}) "
        "| extend registryId = tolower(id) "
        "| join kind=leftouter (resources "
        f"| where type =~ '{REGISTRY_TYPE}/replications' "
        "| extend registryId = tolower(tostring(split(id, '/replications/')[0])) "
        "| summarize replicaRegions = make_list(location) by registryId) on registryId "
        "| project id, name, resourceGroup, subscriptionId, location, sku, properties, replicaRegions"
    )


async def locate(target: RegistryTarget, credential: Any, settings: Settings, deadline: float) -> RegistryConfig:
    """Find the registry with Resource Graph; raises ArmFailure(arm.not_found) when invisible."""
    rows = await resource_graph_rows(_find_query(target), credential, settings, deadline)
    if not rows:
        scope = ", ".join(settings.subscriptions) if settings.subscriptions else "every subscription it can read"
        raise ArmFailure(
            "arm.not_found",
            Status.WARN,
            f"Resource Graph found no registry '{target.name}' in {scope}: wrong name or cloud, another "
            "tenant, or the bot's identity has no Reader access",
            source="resource-graph",
            registry=target.name,
        )
    rows.sort(key=lambda r: str((r.get("properties") or {}).get("loginServer", "")).lower() != target.login_server)
    return RegistryConfig.from_arm(rows[0], source="resource-graph")


async def read_registry(
    located: RegistryConfig, credential: Any, settings: Settings, deadline: float
) -> RegistryConfig:
    """``registries.get`` plus replications and private endpoint connections, concurrently."""
    from azure.mgmt.containerregistry.aio import ContainerRegistryManagementClient

    rg, name = located.resource_group, located.name
    async with ContainerRegistryManagementClient(
        credential, located.subscription_id, base_url=settings.arm_endpoint, **_client_kwargs(settings)
    ) as client:

        async def get() -> dict[str, Any]:
            registry = await client.registries.get(rg, name)
            return dict(registry.as_dict())

        async def replications() -> list[dict[str, Any]]:
            return [dict(r.as_dict()) async for r in client.replications.list(rg, name)]

        async def pes() -> list[dict[str, Any]]:
            return [dict(p.as_dict()) async for p in client.private_endpoint_connections.list(rg, name)]

        # Private endpoints Resource Graph already listed are read at once, with the registry.
        known_pe_ids = [pe.private_endpoint_id for pe in located.private_endpoints if pe.private_endpoint_id]
        # return_exceptions: a failed get must not leave the other reads running on a closed client.
        got, reps, pe_list, pe_dns = await asyncio.gather(
            with_throttle_retry(get, deadline),
            _optional(with_throttle_retry(replications, deadline)),
            _optional(with_throttle_retry(pes, deadline)),
            read_private_endpoint_dns(client, known_pe_ids, deadline),
            return_exceptions=True,
        )
        for outcome in (got, reps, pe_list, pe_dns):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(got, dict)
        registry_json = got
        reps = reps if isinstance(reps, list) else None
        pe_list = pe_list if isinstance(pe_list, list) else None
        config = RegistryConfig.from_arm(registry_json, replications=reps or (), pe_connections=pe_list, source="arm")
        dns_maps = list(pe_dns) if isinstance(pe_dns, list) else []
        late = [pe.private_endpoint_id for pe in config.private_endpoints if pe.private_endpoint_id and pe.private_endpoint_id not in known_pe_ids]
        if late:
            dns_maps += await read_private_endpoint_dns(client, late, deadline)
    return replace(config, private_endpoint_dns=tuple(dns_maps))


NETWORK_API_VERSION = "2024-05-01"


async def read_private_endpoint_dns(client: Any, pe_ids: list[str], deadline: float) -> list[PrivateEndpointDns]:
    """The DNS map of each private endpoint, concurrently; a failure is recorded, never raised."""
    return list(await asyncio.gather(*(_read_one_private_endpoint(client, pe_id, deadline) for pe_id in pe_ids)))


async def _arm_get(client: Any, path: str, deadline: float) -> tuple[int, Any]:
    """GET an ARM path through the registry client's pipeline (auth, CA bundle, transport)."""
    from azure.core.rest import HttpRequest

    separator = "&" if "?" in path else "?"
    request = HttpRequest("GET", f"{path}{separator}api-version={NETWORK_API_VERSION}")
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        raise TimeoutError
    async with asyncio.timeout(remaining):
        response = await client.send_request(request)
        await response.read()
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body


def _network_error(status: int, body: Any, what: str) -> str:
    code = ""
    if isinstance(body, dict):
        code = str((body.get("error") or {}).get("code") or "")
    if status in (401, 403):
        return f"forbidden: {what} (HTTP {status} {code})".rstrip(")").rstrip() + ")"
    if status == 404:
        return f"not found: {what} (HTTP 404 {code})".rstrip(")").rstrip() + ")"
    return f"error: {what} (HTTP {status} {code})".rstrip(")").rstrip() + ")"


async def _read_one_private_endpoint(client: Any, pe_id: str, deadline: float) -> PrivateEndpointDns:
    name = pe_id.rstrip("/").rsplit("/", 1)[-1]
    base = PrivateEndpointDns(name=name, resource_id=pe_id, resource_group=id_part(pe_id, "resourceGroups"))
    try:
        status, pe = await _arm_get(client, pe_id, deadline)
        if status != 200 or not isinstance(pe, dict):
            return replace(base, error=_network_error(status, pe, f"private endpoint {pe_id}"))
        props = pe.get("properties") or {}
        subnet_id = str((props.get("subnet") or {}).get("id") or "")
        nic_ids = [str(n.get("id")) for n in props.get("networkInterfaces") or () if isinstance(n, dict) and n.get("id")]
        custom = [
            (str(c.get("fqdn", "")).lower().rstrip("."), tuple(str(ip) for ip in c.get("ipAddresses") or ()))
            for c in props.get("customDnsConfigs") or ()
            if isinstance(c, dict) and c.get("fqdn")
        ]
        jobs = [_arm_get(client, f"{pe_id}/privateDnsZoneGroups", deadline), *(_arm_get(client, nic, deadline) for nic in nic_ids[:2])]
        answers = await asyncio.gather(*jobs, return_exceptions=True)
    except (AzureError, OSError, aiohttp.ClientError, TimeoutError) as exc:
        return replace(base, error=f"error: private endpoint {pe_id} not read ({type(exc).__name__})")
    zones: list[str] = []
    records: dict[str, list[str]] = {}
    errors: list[str] = []
    for index, answer in enumerate(answers):
        what = "its private DNS zone groups" if index == 0 else f"network interface {nic_ids[index - 1]}"
        if isinstance(answer, BaseException):
            errors.append(f"error: {what} not read ({type(answer).__name__})")
            continue
        status, body = answer
        if status != 200 or not isinstance(body, dict):
            errors.append(_network_error(status, body, what))
            continue
        if index == 0:
            for group in body.get("value") or ():
                for zone_config in ((group or {}).get("properties") or {}).get("privateDnsZoneConfigs") or ():
                    zone_id = ((zone_config or {}).get("properties") or {}).get("privateDnsZoneId")
                    if zone_id:
                        zones.append(str(zone_id))
            continue
        for ip_config in (body.get("properties") or {}).get("ipConfigurations") or ():
            ip_props = (ip_config or {}).get("properties") or {}
            address = ip_props.get("privateIPAddress")
            link = ip_props.get("privateLinkConnectionProperties") or {}
            for fqdn in link.get("fqdns") or ():
                if address:
                    records.setdefault(str(fqdn).lower().rstrip("."), []).append(str(address))
    if not records:  # no NIC readable: the endpoint's own customDnsConfigs say the same
        for fqdn, ips in custom:
            records.setdefault(fqdn, []).extend(ips)
    return replace(
        base,
        subnet_id=subnet_id,
        records=tuple((fqdn, tuple(dict.fromkeys(ips))) for fqdn, ips in sorted(records.items())),
        zones=tuple(dict.fromkeys(zones)),
        error="; ".join(errors) if errors and not records else "",
    )


async def _optional(awaitable: Awaitable[T]) -> T | None:
    """Sub-resources are nice to have: their failure must not hide the registry itself."""
    try:
        return await awaitable
    except (AzureError, ArmFailure, aiohttp.ClientError, OSError) as exc:
        log.info("optional ARM read failed: %s", type(exc).__name__)
        return None


@dataclass(slots=True)
class ArmResult:
    evidence: list[Evidence]
    config: RegistryConfig | None = None


async def check_arm(
    target: RegistryTarget,
    settings: Settings,
    *,
    credential: Any = None,
    client_ip: str | None = None,
    on_located: Callable[[RegistryConfig], None] | None = None,
) -> ArmResult:
    """Locate and read the registry; every outcome is Evidence. ``on_located`` fires after Resource Graph.

    ``credential`` may be passed in (shared with the logs check); otherwise it is built and closed here.
    """
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.arm_timeout
    subject = target.login_server

    def fail(failure: ArmFailure) -> ArmResult:
        ev = Evidence(
            "arm",
            subject,
            settings.vantage_name,
            failure.status,
            failure.detail,
            dict(failure.data),
            _ms(started),
            list(failure.findings),
        )
        return ArmResult([ev])

    owned = credential is None
    if owned:
        try:
            credential = make_credential(settings)
        except CredentialConfigError as exc:
            return fail(ArmFailure("arm.no_credential", Status.SKIPPED, f"registry configuration not read: {exc}"))
    if credential is None:
        return fail(
            ArmFailure(
                "arm.no_credential",
                Status.SKIPPED,
                "registry configuration not read: no Azure credential configured (azure_credential none)",
            )
        )
    try:
        async with asyncio.timeout(settings.arm_timeout):
            try:
                located = await locate(target, credential, settings, deadline)
            except Exception as exc:  # every failure becomes Evidence
                return fail(
                    _translate(exc, f"registry '{target.name}' lookup", settings, scope=subscription_scopes(settings)[0])
                )
            if on_located is not None:
                on_located(located)
            try:
                config = await read_registry(located, credential, settings, deadline)
            except Exception as exc:
                failure = _translate(
                    exc, f"registry {located.name} ({located.resource_group})", settings, scope=located.resource_id
                )
                result = fail(failure)
                result.config = located  # Resource Graph's copy is still worth reporting
                result.evidence[0].data["config"] = located.to_dict()  # and what fixes are built from
                result.evidence.extend(
                    ev for ev in config_evidence(located, settings, _ms(started)) if "arm.found" not in ev.findings
                )
                for ev in result.evidence[1:]:
                    ev.detail += " (from Resource Graph)"
                return result
    except TimeoutError:
        return fail(
            ArmFailure(
                "arm.error",
                Status.FAIL,
                f"ARM did not answer within {settings.arm_timeout:g} s ({settings.arm_endpoint})",
                timeout=True,
            )
        )
    finally:
        if owned and credential is not None:
            await credential.close()
    evidence = config_evidence(config, settings, _ms(started))
    if client_ip:
        evidence.append(ip_rule_evidence(config, client_ip, settings, source="given"))
    return ArmResult(evidence, config)


async def read_registries_bulk(names: list[str], settings: Settings) -> dict[str, RegistryConfig | None]:
    """Network configuration of many registries from Resource Graph, 1000 names per query.

    For scheduled sweeps: no per-registry ARM calls. Names not found (or not visible) map to None.
    Raises CredentialConfigError / ArmFailure when the sweep as a whole cannot run.
    """
    wanted = sorted({n.strip().lower() for n in names if n and n.strip()})
    result: dict[str, RegistryConfig | None] = dict.fromkeys(wanted)
    if not wanted:
        return result
    credential = make_credential(settings)
    if credential is None:
        raise ArmFailure("arm.no_credential", Status.SKIPPED, "no Azure credential configured")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(settings.arm_timeout, settings.check_deadline)
    try:
        for start in range(0, len(wanted), _BULK_CHUNK):
            chunk = wanted[start : start + _BULK_CHUNK]
            try:
                rows = await resource_graph_rows(_bulk_query(chunk), credential, settings, deadline)
            except Exception as exc:
                raise _translate(exc, "Resource Graph sweep", settings) from exc
            for row in rows:
                config = RegistryConfig.from_arm(
                    row, replica_regions=row.get("replicaRegions") or (), source="resource-graph"
                )
                if config.name in result:
                    result[config.name] = config
    finally:
        await credential.close()
    return result


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
