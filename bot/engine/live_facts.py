"""What the live checks learnt, as values the fix templates can use.

A fix that says "allow ``<reg>.westeurope.data.azurecr.io`` (and the data endpoint of every other
replica region)" makes the user go and look up what the bot already read from ARM. This module
collects the facts the checks established — every data endpoint per replica region, every
private DNS record that is missing or wrong (name, zone, the IP it should have), each private
endpoint connection and its state, the IP rules against the client's IP, the bypass switches,
the egress IP the registry saw from the bot — and turns them into template values (scalars) and
lists (one fix step per item) for :func:`bot.engine.classify.render_fix`.

Two rules keep the facts honest:

* **Vantage.** The IP a registry reports for the *bot's* probe is ``bot_ip``, never ``client_ip``:
  the client is whoever the paste came from. ``bot_is_client`` is set only when there is no paste
  (``/acrcheck myreg``: the bot's network is what was checked) or the paste's client IP is the
  bot's.
* **Live beats text.** Live lists are complete (every region, every record); cards show their
  text-only steps ``unless`` a live value exists, so text-only facts are used only when nothing
  live is known.

Pure data in, data out: the engine stays free of network code (it reads ``Evidence.data``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from bot.engine.models import VANTAGE_PASTE, Evidence, Facts

#: Paste contexts (signal ids) in which each bypass switch matters.
TASK_SIGNALS = frozenset({"acr_tasks", "task_login_failed"})
TRUSTED_SERVICE_SIGNALS = frozenset({"defender_scan", "aci_or_virtual_node", "azure_ml", "trusted_services"})
SERVICE_SIGNALS = TASK_SIGNALS | TRUSTED_SERVICE_SIGNALS | {"app_service", "denied_json_message"}


def is_bot_vantage(ev: Evidence) -> bool:
    """Evidence measured by the bot itself (not read from the paste or a pasted probe report)."""
    return ev.vantage != VANTAGE_PASTE and not any(f.startswith("user.") for f in ev.findings)


@dataclass
class LiveFacts:
    """Facts established by live checks, plus the two lists fix steps iterate over."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    permission_steps: list[tuple[str, str]] = field(default_factory=list)  # (sentence, command)

    @classmethod
    def from_evidence(
        cls, evidence: list[Evidence], facts: Facts, *, pasted: bool, signals: frozenset[str] = frozenset()
    ) -> LiveFacts:
        out = cls()
        config = _config(evidence)
        if config is not None:
            out._registry(config, facts, pasted=pasted, signals=signals)
        out._dns(evidence)
        out._probes(evidence, facts, pasted=pasted)
        out._permissions(evidence)
        return out

    # ------------------------------------------------------------------ registry configuration
    def _registry(self, config: dict[str, Any], facts: Facts, *, pasted: bool, signals: frozenset[str]) -> None:
        v = self.values
        v["live_arm"] = "yes"
        name = str(config.get("name") or "")
        if name:
            v["registry"] = name
        for key, source in (
            ("login_server", "login_server"),
            ("resource_group", "resource_group"),
            ("subscription", "subscription_id"),
            ("registry_id", "resource_id"),
            ("location", "location"),
            ("public_network_access", "public_network_access"),
            ("default_action", "default_action"),
            ("bypass_options", "bypass_options"),
        ):
            if config.get(source):
                v[key] = str(config[source])
        rules = [str(r) for r in config.get("ip_rules") or ()]
        v["ip_rules"] = ", ".join(rules) if rules else "none"
        regions = _regions(config)
        if regions:
            v["data_regions"] = ", ".join(regions)
        endpoints = _data_endpoints(config, regions)
        if endpoints:
            v["live_data_endpoints"] = "yes"
            v["data_endpoints"] = ", ".join(endpoints)
            self.lists["data_endpoints"] = [
                {"data_endpoint": host, "data_region": host.split(".")[1] if host.count(".") > 3 else ""}
                for host in endpoints
            ]
        elif not config.get("data_endpoint_enabled"):
            v["data_endpoints_disabled"] = "yes"
            v["storage_tags"] = ", ".join(f"Storage.{r}" for r in regions) or "Storage"
        restricted = str(config.get("public_network_access", "")).lower() == "disabled" or str(
            config.get("default_action", "")
        ).lower() == "deny"
        if str(config.get("public_network_access", "")).lower() == "disabled":
            v["public_access_disabled"] = "yes"
        elif str(config.get("default_action", "")).lower() == "deny":
            v["default_deny"] = "yes"
        about_service = bool(signals & SERVICE_SIGNALS)
        # A switch is named only where it can matter: restricted registry, and a paste (if any)
        # about what the switch governs — an unrelated configuration observation is not a fix.
        if restricted and config.get("bypass_for_tasks") is not True and (not pasted or signals & TASK_SIGNALS or not about_service):
            v["tasks_bypass_off"] = "networkRuleBypassAllowedForTasks=false"
        if (
            restricted
            and str(config.get("bypass_options", "")).lower() == "none"
            and (not pasted or signals & TRUSTED_SERVICE_SIGNALS or not about_service)
        ):
            v["trusted_services_off"] = "networkRuleBypassOptions=None"
        client_ip = facts.client_ip
        if client_ip and str(config.get("default_action", "")).lower() == "deny" and not _in_rules(client_ip, rules):
            v["client_ip_not_allowed"] = "yes"
        pending, broken = [], []
        dns_maps = {str(m.get("resource_id", "")).lower(): m for m in config.get("private_endpoint_dns") or ()}
        for pe in config.get("private_endpoints") or ():
            status = str(pe.get("status", ""))
            pe_id = str(pe.get("private_endpoint_id", ""))
            dns_map = dns_maps.get(pe_id.lower(), {})
            item = {
                "pe_connection": str(pe.get("name", "")),
                "pe_status": status,
                "pe_id": pe_id,
                "pe_name": pe_id.rstrip("/").rsplit("/", 1)[-1] if pe_id else str(pe.get("name", "")),
                "pe_resource_group": id_part(pe_id, "resourceGroups"),
                "pe_subnet_id": str(dns_map.get("subnet_id") or ""),
            }
            item = {k: val for k, val in item.items() if val}
            if status.lower() == "pending":
                pending.append(item)
            elif status.lower() in ("rejected", "disconnected"):
                broken.append(item)
        if pending:
            self.lists["pe_pending"] = pending
        if broken:
            self.lists["pe_broken"] = broken
        zone_rgs = [
            id_part(str(zone), "resourceGroups") for m in config.get("private_endpoint_dns") or () for zone in m.get("zones") or ()
        ]
        if zone_rgs:
            v["zone_resource_group"] = zone_rgs[0]

    # ------------------------------------------------------------------ DNS
    def _dns(self, evidence: list[Evidence]) -> None:
        missing: list[dict[str, str]] = []
        wrong: list[dict[str, str]] = []
        for ev in evidence:
            if ev.check != "dns":
                continue
            expected = ev.data.get("pe_expected") if isinstance(ev.data, dict) else None
            if isinstance(expected, dict):
                item = {
                    "record_fqdn": str(expected.get("fqdn", ev.target)),
                    "record_name": str(expected.get("record_name", "")),
                    "record_zone": str(expected.get("zone", "")),
                    "record_ip": str((expected.get("ips") or [""])[0]),
                    "record_pe": str(expected.get("private_endpoint", "")),
                }
                if expected.get("zone_resource_group"):
                    item["zone_resource_group"] = str(expected["zone_resource_group"])
                    self.values.setdefault("zone_resource_group", item["zone_resource_group"])
                if "dns.pe_record_wrong" in ev.findings:
                    item["record_actual"] = str((expected.get("actual") or [""])[0])
                    wrong.append(item)
                elif "dns.pe_record_missing" in ev.findings:
                    missing.append(item)
            if {"dns.cname_loop", "dns.chain_too_long"} & set(ev.findings):
                self.values["broken_chain"] = " → ".join(str(n) for n in (ev.data.get("chain") or [])[:8])
            if "dns.privatelink_public_answer" in ev.findings:
                self.values["privatelink_public"] = ev.target
        if missing:
            self.lists["missing_records"] = missing
            self.values["live_records"] = "yes"
        if wrong:
            self.lists["wrong_records"] = wrong
            self.values["live_records"] = "yes"

    # ------------------------------------------------------------------ probes
    def _probes(self, evidence: list[Evidence], facts: Facts, *, pasted: bool) -> None:
        v = self.values
        failing: list[str] = []
        for ev in evidence:
            data: dict[str, Any] = ev.data or {}
            failed_here = {"probe.data_endpoint_blocked", "dns.data_endpoint_missing", "dns.pe_record_missing"}
            if failed_here & set(ev.findings) and ".data." in ev.target and ev.target not in failing:
                failing.append(ev.target)
            if ev.check != "probe":
                continue
            if "probe.denied" in ev.findings and isinstance(data.get("client_ip"), str) and is_bot_vantage(ev):
                v.setdefault("bot_ip", data["client_ip"])
            if isinstance(data.get("proxy"), str) and data["proxy"]:
                v.setdefault("proxy", data["proxy"])
            if {"probe.tls_intercepted", "probe.tls_expired", "probe.tls_not_yet_valid"} & set(ev.findings):
                if data.get("cert_issuer"):
                    v.setdefault("cert_issuer", str(data["cert_issuer"]))
                    v.setdefault("cert_host", ev.target)
                if {"probe.tls_expired", "probe.tls_not_yet_valid"} & set(ev.findings) and data.get("cert_not_after"):
                    v.setdefault("cert_validity", f"{str(data.get('cert_not_before', ''))[:10]} to {str(data['cert_not_after'])[:10]}")
            if "probe.redirect" in ev.findings and data.get("redirect_location"):
                v.setdefault("redirect_location", str(data["redirect_location"]))
        if failing:
            v["failing_data_endpoint"] = failing[0]
            v["failing_data_endpoints"] = ", ".join(failing)
        bot_ip = v.get("bot_ip")
        if bot_ip and (not pasted or facts.client_ip == bot_ip):
            v["bot_is_client"] = "yes"
        if pasted and not facts.client_ip:
            v["client_unknown"] = "yes"

    # ------------------------------------------------------------------ permissions
    def _permissions(self, evidence: list[Evidence]) -> None:
        seen: set[str] = set()
        for ev in evidence:
            if not {"arm.permission_missing", "logs.permission_missing"} & set(ev.findings):
                continue
            command = str((ev.data or {}).get("command") or "")
            if not command or command in seen:
                continue
            seen.add(command)
            sentence = ev.detail.split(" — ", 1)[0]
            self.permission_steps.append((sentence, command))


def _config(evidence: list[Evidence]) -> dict[str, Any] | None:
    for ev in evidence:
        if ev.check == "arm" and isinstance((ev.data or {}).get("config"), dict):
            return dict(ev.data["config"])
    return None


def _regions(config: dict[str, Any]) -> list[str]:
    regions = [str(config["location"])] if config.get("location") else []
    for rep in config.get("replications") or ():
        region = str(rep.get("region", "")) if isinstance(rep, dict) else ""
        if region and region not in regions:
            regions.append(region)
    return regions


def _data_endpoints(config: dict[str, Any], regions: list[str]) -> list[str]:
    names = [str(h).lower() for h in config.get("data_endpoint_host_names") or ()]
    if names:
        return names
    if not config.get("data_endpoint_enabled"):
        return []
    login = str(config.get("login_server") or "")
    if "." not in login:
        return []
    label, suffix = login.split(".", 1)
    return [f"{label}.{region}.data.{suffix}" for region in regions]


def _in_rules(ip: str, rules: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for rule in rules:
        try:
            if address in ipaddress.ip_network(rule, strict=False):
                return True
        except ValueError:
            continue
    return False


def id_part(resource_id: str, key: str) -> str:
    """The segment after ``key`` in an ARM resource id (``resourceGroups`` → ``rg-net``), or "".

    Matched case-insensitively: ARM ids do not keep one case (``resourceGroups``,
    ``resourcegroups``). The live checks use it too (``bot.checks.azure``).
    """
    parts = resource_id.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == key.lower():
            return parts[i + 1]
    return ""
