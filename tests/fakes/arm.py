"""Fake Azure Resource Manager, Resource Graph and Log Analytics query API over HTTPS (127.0.0.1).

Routes (any api-version accepted and recorded):

* ``GET  /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}``
* ``GET  …/registries/{name}/replications`` and ``…/registries/{name}/privateEndpointConnections``
* ``POST /providers/Microsoft.ResourceGraph/resources`` — understands the two query shapes acrcheck
  sends (``name =~ 'x' or …loginServer =~ 'y'`` and ``name in~ ('a', …)``), pages with ``$skipToken``
* ``POST /v1/workspaces/{id}/query`` — ContainerRegistryLoginEvents rows

* ``GET  …/Microsoft.Network/privateEndpoints/{pe}``, ``…/{pe}/privateDnsZoneGroups`` and
  ``…/Microsoft.Network/networkInterfaces/{nic}`` — a private endpoint's DNS map (``add_private_endpoint``)

Failure modes per registry (``FakeRegistry.mode``), per private endpoint, for Resource Graph
(``rg_mode``) and for the log query (``logs_mode``): ``403`` (AuthorizationFailed, with the object
id and scope real ARM names), ``404`` (ResourceNotFound), ``429`` (with Retry-After,
``throttle_times`` then success), ``500``, ``slow`` (sleeps ``slow_seconds``); Resource Graph also
``nosubs`` (400 NoValidSubscriptionsInQueryRequest: none of the subscriptions is readable).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.tls import QuietHandler, TestPKI, TLSHTTPServer

SUB = "00000000-0000-0000-0000-0000000000aa"
#: The object id real ARM names in an AuthorizationFailed message: the bot's identity.
BOT_OBJECT_ID = "7d1c0f3e-5b2a-4e8c-9a61-2f4b8c0d9e15"


def registry_json(
    name: str,
    *,
    rg: str = "rg-net",
    sub: str = SUB,
    location: str = "westeurope",
    sku: str = "Premium",
    public_network_access: str = "Enabled",
    default_action: str = "Allow",
    ip_rules: tuple[str, ...] = (),
    bypass_options: str = "AzureServices",
    tasks_bypass: bool = True,
    data_endpoint_enabled: bool = False,
    replicas: tuple[str, ...] = (),
    private_endpoints: tuple[tuple[str, str], ...] = (),
    provisioning_state: str = "Succeeded",
    login_server: str | None = None,
) -> dict[str, Any]:
    """A registry resource as ARM returns it (api-version 2025-11-01 shape, plus a future field)."""
    login = login_server or f"{name}.azurecr.io"
    regions = [location, *[r for r in replicas if r != location]]
    rid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}"
    return {
        "id": rid,
        "name": name,
        "type": "Microsoft.ContainerRegistry/registries",
        "location": location,
        "tags": {},
        "sku": {"name": sku, "tier": sku},
        "systemData": {"createdAt": "2024-01-02T03:04:05.1234567Z", "createdByType": "User"},
        "properties": {
            "loginServer": login,
            "creationDate": "2024-01-02T03:04:05.1234567Z",
            "provisioningState": provisioning_state,
            "adminUserEnabled": False,
            "networkRuleSet": {
                "defaultAction": default_action,
                "ipRules": [{"action": "Allow", "value": v} for v in ip_rules],
            },
            "policies": {"azureADAuthenticationAsArmPolicy": {"status": "enabled"}},
            "publicNetworkAccess": public_network_access,
            "networkRuleBypassOptions": bypass_options,
            "networkRuleBypassAllowedForTasks": tasks_bypass,
            "dataEndpointEnabled": data_endpoint_enabled,
            "dataEndpointHostNames": (
                [f"{login.split('.')[0]}.{r}.data.azurecr.io" for r in regions]
                if data_endpoint_enabled
                else []
            ),
            "privateEndpointConnections": [
                _pe_json(rid, pe_name, status) for pe_name, status in private_endpoints
            ],
            "zoneRedundancy": "Disabled",
            "anonymousPullEnabled": False,
            "someFutureField": {"x": 1},
        },
    }


def _pe_json(registry_id: str, name: str, status: str) -> dict[str, Any]:
    return {
        "id": f"{registry_id}/privateEndpointConnections/{name}",
        "name": name,
        "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
        "properties": {
            "privateEndpoint": {
                "id": f"/subscriptions/{SUB}/resourceGroups/rg-vnet/providers/Microsoft.Network/"
                f"privateEndpoints/{name}"
            },
            "privateLinkServiceConnectionState": {
                "status": status,
                "description": {"Approved": "Auto-Approved"}.get(status, ""),
                "actionsRequired": "Recreate" if status == "Disconnected" else "None",
            },
            "provisioningState": "Succeeded",
        },
    }


def _replication_json(registry: dict[str, Any], region: str) -> dict[str, Any]:
    return {
        "id": f"{registry['id']}/replications/{region}",
        "name": region,
        "type": "Microsoft.ContainerRegistry/registries/replications",
        "location": region,
        "properties": {
            "provisioningState": "Succeeded",
            "status": {"displayStatus": "Ready", "message": "The replication is ready."},
            "regionEndpointEnabled": True,
            "zoneRedundancy": "Disabled",
        },
    }


@dataclass
class FakeRegistry:
    body: dict[str, Any]
    replicas: tuple[str, ...] = ()
    mode: str = "ok"  # ok | 403 | 404 | 429 | 500 | slow

    @property
    def name(self) -> str:
        return str(self.body["name"]).lower()


@dataclass
class FakePrivateEndpoint:
    """A private endpoint with one NIC whose ip configurations map each registry FQDN to an IP."""

    name: str
    records: dict[str, str]  # fqdn -> private IP (what the NIC says)
    rg: str = "rg-vnet"
    zone_rg: str | None = "rg-dns"  # None: no private DNS zone group
    zone: str = "privatelink.azurecr.io"
    mode: str = "ok"  # ok | 403 | 404 (the endpoint) ; nic403 (the NIC only)

    @property
    def id(self) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{self.rg}/providers/Microsoft.Network/privateEndpoints/{self.name}"

    @property
    def nic_id(self) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{self.rg}/providers/Microsoft.Network/networkInterfaces/{self.name}.nic.0"

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Network/privateEndpoints",
            "location": "westeurope",
            "properties": {
                "provisioningState": "Succeeded",
                "subnet": {
                    "id": f"/subscriptions/{SUB}/resourceGroups/{self.rg}/providers/Microsoft.Network/"
                    "virtualNetworks/vnet-hub/subnets/snet-pe"
                },
                "networkInterfaces": [{"id": self.nic_id}],
                "privateLinkServiceConnections": [],
                "customDnsConfigs": [] if self.zone_rg else [
                    {"fqdn": fqdn, "ipAddresses": [ip]} for fqdn, ip in self.records.items()
                ],
            },
        }

    def nic(self) -> dict[str, Any]:
        configs = []
        for i, (fqdn, ip) in enumerate(self.records.items()):
            labels = fqdn.split(".")
            member = "registry" if len(labels) == 3 else f"registry_data_{labels[1]}"
            configs.append(
                {
                    "name": f"privateEndpointIpConfig.{i}",
                    "properties": {
                        "privateIPAddress": ip,
                        "privateIPAllocationMethod": "Dynamic",
                        "privateLinkConnectionProperties": {
                            "groupId": "registry",
                            "requiredMemberName": member,
                            "fqdns": [fqdn],
                        },
                    },
                }
            )
        return {"id": self.nic_id, "name": self.nic_id.rsplit("/", 1)[-1], "properties": {"ipConfigurations": configs}}

    def zone_groups(self) -> dict[str, Any]:
        if not self.zone_rg:
            return {"value": []}
        zone_id = f"/subscriptions/{SUB}/resourceGroups/{self.zone_rg}/providers/Microsoft.Network/privateDnsZones/{self.zone}"
        record_sets = [
            {"recordType": "A", "recordSetName": ".".join(fqdn.split(".")[:-2]), "fqdn": fqdn.replace(".azurecr.io", ".privatelink.azurecr.io"),
             "ttl": 10, "ipAddresses": [ip]}
            for fqdn, ip in self.records.items()
        ]  # fmt: skip
        return {
            "value": [
                {
                    "name": "default",
                    "properties": {
                        "privateDnsZoneConfigs": [
                            {"name": self.zone.replace(".", "-"), "properties": {"privateDnsZoneId": zone_id, "recordSets": record_sets}}
                        ]
                    },
                }
            ]
        }


@dataclass
class ArmState:
    registries: dict[str, FakeRegistry] = field(default_factory=dict)
    private_endpoints: dict[str, FakePrivateEndpoint] = field(default_factory=dict)
    rg_mode: str = "ok"
    logs_mode: str = "ok"
    rg_page_size: int = 1000
    retry_after: float = 0.2
    throttle_times: int = 1
    slow_seconds: float = 3.0
    latency: tuple[float, float] | None = None
    log_rows: list[list[Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    throttled: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_NET_RE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/"
    r"(?P<kind>privateEndpoints|networkInterfaces)/(?P<name>[^/]+)(?P<sub_resource>/privateDnsZoneGroups)?$",
    re.IGNORECASE,
)
_REG_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerRegistry/"
    r"registries/(?P<name>[^/]+)(?P<sub_resource>/replications|/privateEndpointConnections)?$",
    re.IGNORECASE,
)


class _ArmHandler(QuietHandler):
    server: _ArmServer

    @property
    def state(self) -> ArmState:
        return self.server.state

    def _record(self, body: Any = None) -> None:
        path, _, query = self.path.partition("?")
        version = re.search(r"api-version=([^&]+)", query)
        with self.state.lock:
            self.state.calls.append(
                {
                    "method": self.command,
                    "path": path,
                    "api_version": version.group(1) if version else None,
                    "auth": self.headers.get("Authorization", ""),
                    "body": body,
                }
            )

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        base = {"Content-Type": "application/json; charset=utf-8", "x-ms-request-id": "fake"}
        base.update(headers or {})
        self.send_body(status, json.dumps(payload).encode(), base)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": {"code": code, "message": message}}, headers)

    def _latency(self) -> None:
        if self.state.latency:
            time.sleep(random.uniform(*self.state.latency))

    def _mode_failure(self, mode: str, key: str) -> bool:
        """Apply a failure mode; True when a response was sent."""
        if mode == "slow":
            time.sleep(self.state.slow_seconds)
            return False
        if mode == "403":
            path = self.path.partition("?")[0]
            action = {
                "resourcegraph": "Microsoft.ResourceGraph/resources/read",
                "logs": "Microsoft.OperationalInsights/workspaces/query/read",
            }.get(key, "Microsoft.Network/privateEndpoints/read" if "Microsoft.Network" in path else
                  "Microsoft.ContainerRegistry/registries/read")  # fmt: skip
            scope = f"/subscriptions/{SUB}" if key in ("resourcegraph", "logs") else path
            self._error(
                403,
                "AuthorizationFailed",
                f"The client '{BOT_OBJECT_ID}' with object id '{BOT_OBJECT_ID}' does not have authorization to "
                f"perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
                "granted, please refresh your credentials.",
            )
            return True
        if mode == "nosubs":
            self._json(
                400,
                {
                    "error": {
                        "code": "BadRequest",
                        "message": "Please provide below info when asking for support: timestamp = 2025-01-01T00:00:00Z, "
                        "correlationId = 7f4a1b9c-0000-4000-8000-000000000001.",
                        "details": [
                            {
                                "code": "NoValidSubscriptionsInQueryRequest",
                                "message": "There are no valid subscriptions in the query request.",
                            }
                        ],
                    }
                },
            )
            return True
        if mode == "404":
            self._error(
                404,
                "ResourceNotFound",
                "The Resource 'Microsoft.ContainerRegistry/registries/x' was not found.",
            )
            return True
        if mode == "500":
            self._error(500, "InternalServerError", "Encountered internal server error.")
            return True
        if mode == "429":
            with self.state.lock:
                count = self.state.throttled.get(key, 0)
                self.state.throttled[key] = count + 1
            if count < self.state.throttle_times:
                self._error(
                    429,
                    "TooManyRequests",
                    "Rate limit exceeded",
                    {"Retry-After": f"{self.state.retry_after:g}"},
                )
                return True
        return False

    def do_GET(self) -> None:
        self._record()
        self._latency()
        path = self.path.partition("?")[0]
        net = _NET_RE.match(path)
        if net:
            self._network(net)
            return
        match = _REG_RE.match(path)
        if not match:
            self._error(404, "InvalidResourceType", f"no route {path}")
            return
        registry = self.state.registries.get(match["name"].lower())
        if registry is None or registry.body["properties"] is None:
            self._error(404, "ResourceNotFound", f"The Resource 'registries/{match['name']}' was not found.")
            return
        if self._mode_failure(registry.mode, path):
            return
        sub_resource = (match["sub_resource"] or "").lower()
        if sub_resource == "/replications":
            regions = [registry.body["location"], *registry.replicas] if registry.replicas else []
            self._json(200, {"value": [_replication_json(registry.body, r) for r in regions]})
        elif sub_resource == "/privateendpointconnections":
            self._json(200, {"value": registry.body["properties"]["privateEndpointConnections"]})
        else:
            self._json(200, registry.body)

    def _network(self, match: re.Match[str]) -> None:
        kind, name = match["kind"].lower(), match["name"]
        if kind == "privateendpoints":
            pe = self.state.private_endpoints.get(name.lower())
            if pe is None or pe.mode == "404":
                self._error(404, "NotFound", f"Resource {match.group(0)} not found.")
                return
            if self._mode_failure(pe.mode, match.group(0)):
                return
            self._json(200, pe.zone_groups() if match["sub_resource"] else pe.body())
            return
        pe = next((p for p in self.state.private_endpoints.values() if p.nic_id.lower() == match.group(0).lower()), None)
        if pe is None:
            self._error(404, "NotFound", f"Resource {match.group(0)} not found.")
            return
        if pe.mode == "nic403" and self._mode_failure("403", match.group(0)):
            return
        self._json(200, pe.nic())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        self._record(body)
        self._latency()
        path = self.path.partition("?")[0]
        if path.lower() == "/providers/microsoft.resourcegraph/resources":
            self._resource_graph(body)
        elif re.match(r"^(/v1)?/workspaces/[^/]+/query$", path):
            self._logs()
        else:
            self._error(404, "NotFound", f"no route {path}")

    def _resource_graph(self, body: dict[str, Any]) -> None:
        if self._mode_failure(self.state.rg_mode, "resourcegraph"):
            return
        query = str(body.get("query", ""))
        subs = body.get("subscriptions")
        names: set[str] = set()
        logins: set[str] = set()
        listed = re.search(r"name in~ \(([^)]*)\)", query)
        if listed:
            names = {n.lower() for n in re.findall(r"'([^']*)'", listed.group(1))}
        names |= {n.lower() for n in re.findall(r"name =~ '([^']*)'", query)}
        logins = {n.lower() for n in re.findall(r"loginServer\) =~ '([^']*)'", query)}
        rows = []
        for reg in sorted(self.state.registries.values(), key=lambda r: r.name):
            props = reg.body["properties"]
            if props is None or (subs and reg.body["id"].split("/")[2] not in subs):
                continue
            if reg.name in names or str(props["loginServer"]).lower() in logins:
                row = {
                    "id": reg.body["id"],
                    "name": reg.body["name"],
                    "resourceGroup": reg.body["id"].split("/")[4],
                    "subscriptionId": reg.body["id"].split("/")[2],
                    "location": reg.body["location"],
                    "sku": reg.body["sku"],
                    "properties": props,
                }
                if "replicaRegions" in query:
                    row["replicaRegions"] = [reg.body["location"], *reg.replicas] if reg.replicas else None
                rows.append(row)
        options = body.get("options") or {}
        offset = int(options.get("$skipToken") or 0)
        size = self.state.rg_page_size
        page = rows[offset : offset + size]
        payload: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "data": page,
            "facets": [],
            "resultTruncated": "false",
        }
        if offset + size < len(rows):
            payload["$skipToken"] = str(offset + size)
        self._json(200, payload)

    def _logs(self) -> None:
        if self._mode_failure(self.state.logs_mode, "logs"):
            return
        columns = [
            {"name": "CallerIpAddress", "type": "string"},
            {"name": "Identity", "type": "string"},
            {"name": "ResultType", "type": "string"},
            {"name": "ResultDescription", "type": "string"},
            {"name": "Failures", "type": "long"},
            {"name": "LastSeen", "type": "datetime"},
        ]
        self._json(
            200, {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": self.state.log_rows}]}
        )


class _ArmServer(TLSHTTPServer):
    state: ArmState


class FakeARM:
    """HTTPS ARM + Resource Graph + Logs on 127.0.0.1 with a cert from the test CA."""

    def __init__(self, pki: TestPKI, address: str = "127.0.0.1") -> None:
        ctx = pki.server_context("127.0.0.1", "localhost")
        self.server = _ArmServer((address, 0), _ArmHandler, ctx)
        self.server.state = ArmState()
        self.state = self.server.state
        self.port = self.server.server_address[1]
        self.url = f"https://{address}:{self.port}"
        self.server.start()

    def add(self, body: dict[str, Any], *, replicas: tuple[str, ...] = (), mode: str = "ok") -> FakeRegistry:
        registry = FakeRegistry(body, replicas=replicas, mode=mode)
        self.state.registries[registry.name] = registry
        return registry

    def add_private_endpoint(
        self, name: str, records: dict[str, str], *, rg: str = "rg-vnet", zone_rg: str | None = "rg-dns", mode: str = "ok"
    ) -> FakePrivateEndpoint:
        pe = FakePrivateEndpoint(name, dict(records), rg=rg, zone_rg=zone_rg, mode=mode)
        self.state.private_endpoints[name.lower()] = pe
        return pe

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [c for c in self.state.calls if method is None or c["method"] == method]

    def reset(self) -> None:
        with self.state.lock:
            self.state.registries.clear()
            self.state.private_endpoints.clear()
            self.state.rg_mode = "ok"
            self.state.logs_mode = "ok"
            self.state.rg_page_size = 1000
            self.state.retry_after = 0.2
            self.state.throttle_times = 1
            self.state.slow_seconds = 3.0
            self.state.latency = None
            self.state.log_rows = []
            self.state.calls.clear()
            self.state.throttled.clear()

    def stop(self) -> None:
        self.server.stop()
