"""Re-rank causes with live evidence, weighing each finding by what it explains.

The text classifier ranks causes from the paste; live checks then add or subtract the weights
each card lists under ``live``. A plain sum lets any finding outweigh the paste: a registry whose
Tasks bypass is off gets "ACR Tasks cannot reach it" as its top cause for a paste that involves no
task, and the bot's own probe being denied turns into "allow the client's IP" with the *bot's* IP.
So each finding is weighed by what it explains about this paste:

* **Matches the paste** (×1.5, ×2 when both hold): the finding concerns a host the paste names
  as failing, and/or the same step (DNS, connect, TLS, denial, proxy) fails in the paste.
* **A configuration observation that explains nothing in it** (×0.25): a bypass switch for a
  service the paste does not involve; ×1.5 when it does.
* **The bot's own vantage** (×0.3 to ×0.6): the registry denied the *bot's* egress IP. That shows
  the registry restricts public clients; it says nothing about a Defender scan or a client whose
  IP differs, and it is never turned into "allow the client's IP" (see ``live_facts``).
* **Context selects** (×1.5 on the cause's live support): when the paste names what a cause is
  about (an Azure service, a task, a cluster — ``live.context`` in its card) and the live
  configuration supports that cause.

Without a paste (``/acrcheck myreg``, scheduled checks) every weight is 1: the bot's network is
the client. Every weighting is written next to the evidence line it changed (``supported_by``),
and a changed top cause says why it now leads (``reasons``) and why the former leader fell
(``contradicted_by``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.engine.classify import HEALTHY, HEALTHY_SCORE, UNRELATED, _build
from bot.engine.extract import Extraction
from bot.engine.hostguard import METADATA_ADDRESSES, PRIVATE_ENDPOINT_NETWORKS
from bot.engine.knowledge import KnowledgeBase, default_knowledge
from bot.engine.live_facts import SERVICE_SIGNALS, TASK_SIGNALS, TRUSTED_SERVICE_SIGNALS, LiveFacts, is_bot_vantage
from bot.engine.models import Diagnosis, Evidence, Facts, FixStep, Status

MATCH_BOTH, MATCH_ONE = 2.0, 1.5
UNRELATED_CONFIG, RELATED_CONFIG = 0.25, 1.5
BOT_IP_OTHER_CLIENT, BOT_IP_UNKNOWN_CLIENT = 0.3, 0.6
OTHER_STEP = 0.5
CONTEXT_BOOST = 1.5

#: Registry settings that explain a 403 denial — and nothing else a client can see.
DENIAL_CONFIG = frozenset({"arm.default_deny", "arm.public_access_disabled", "arm.ip_not_allowed"})

#: The step of a client's request each observation belongs to.
STEP_OF_FINDING = {
    **dict.fromkeys(
        ("dns.nxdomain", "dns.servfail", "dns.timeout", "dns.noanswer", "dns.data_endpoint_missing",
         "dns.privatelink_public_answer", "dns.cname_loop", "dns.chain_too_long", "dns.pe_record_missing",
         "dns.pe_record_wrong"),
        "dns",
    ),
    **dict.fromkeys(("probe.timeout", "probe.refused", "probe.reset", "probe.data_endpoint_blocked"), "connect"),
    **dict.fromkeys(
        ("probe.tls_untrusted", "probe.tls_intercepted", "probe.tls_name_mismatch", "probe.tls_expired",
         "probe.tls_not_yet_valid"),
        "tls",
    ),
    **dict.fromkeys(("probe.denied", "arm.ip_not_allowed", "probe.forbidden_other"), "denied"),
    **dict.fromkeys(("proxy.eof", "proxy.forbidden", "proxy.auth_required", "proxy.unreachable", "proxy.error",
                     "probe.redirect"), "proxy"),
}  # fmt: skip

#: Paste signals that say which step failed there.
PASTE_STEPS: dict[str, frozenset[str]] = {
    "dns": frozenset({"dns_no_such_host", "dns_server_misbehaving", "dns_temporary_failure", "connectivity_dns_error",
                      "dns_udp_failure", "canipull_failed_exit"}),
    "connect": frozenset({"client_timeout_headers", "context_deadline", "dial_timeout", "io_timeout",
                          "connection_refused", "connection_reset", "no_route", "host_not_reachable", "eof_error",
                          "tls_handshake_timeout", "could_not_connect_login_server", "download_failed",
                          "containerd_layer_copy", "tcp_test_failed"}),
    "tls": frozenset({"x509_unknown_authority", "x509_expired", "connectivity_ssl_error", "ssl_generic",
                      "cert_valid_for_other_name", "self_signed"}),
    "denied": frozenset({"acr_denied_client_ip", "acr_firewall_link", "forbidden_403", "login_attempt_403",
                         "denied_json_message", "refresh_token_error"}),
    "proxy": frozenset({"proxyconnect", "proxy_auth_required"}),
}  # fmt: skip

#: Configuration observations that matter only for what they govern.
CONFIG_CONTEXT: dict[str, tuple[frozenset[str], str]] = {
    "arm.tasks_bypass_off": (TASK_SIGNALS, "ACR Tasks"),
    "arm.trusted_services_off": (TRUSTED_SERVICE_SIGNALS, "a trusted Azure service (Defender for Cloud, ACI, Azure ML)"),
}
_SERVICE_NAMES = {
    "acr_tasks": "ACR Tasks",
    "task_login_failed": "an ACR Task",
    "defender_scan": "Defender for Cloud",
    "aci_or_virtual_node": "Azure Container Instances",
    "azure_ml": "Azure Machine Learning",
    "trusted_services": "a trusted Azure service",
    "app_service": "App Service",
    "denied_json_message": "App Service",
    # other contexts a card's ``live.context`` may name
    "aks_context": "an AKS cluster",
    "tool_kubelet": "an AKS cluster",
    "pod_pull_failure": "an AKS cluster",
    "tool_canipull": "an AKS cluster",
    "private_endpoint_words": "a private endpoint",
    "checkhealth_vnet_dns_wrong": "a private endpoint",
    "pe_state_words": "a private endpoint",
    "pe_dns_public_prose": "a private endpoint",
    "proxy_mention": "a proxy",
    "proxy_daemon_prose": "a proxy",
}
_BOT_DENIAL = frozenset({"probe.denied", "arm.ip_not_allowed"})


@dataclass(frozen=True)
class PasteContext:
    """What the paste says failed, where, and for whom; ``None`` stands for "no paste"."""

    hosts: frozenset[str]
    steps: frozenset[str]
    signals: frozenset[str]
    client_ip: str | None

    @classmethod
    def of(cls, facts: Facts) -> PasteContext:
        hosts = {h.split(":")[0].lower() for h in (facts.registry_host, facts.login_server) if h}
        hosts |= {h.lower() for h in (*facts.data_endpoints, *facts.blob_hosts, *facts.privatelink_hosts)}
        hosts |= {h.host.split(":")[0].lower() for h in facts.hosts}
        signals = frozenset(facts.signals)
        steps = frozenset(step for step, names in PASTE_STEPS.items() if signals & names)
        return cls(frozenset(hosts), steps, signals, facts.client_ip)

    @property
    def service(self) -> str | None:
        found = sorted(self.signals & SERVICE_SIGNALS)
        return _SERVICE_NAMES.get(found[0], "an Azure service") if found else None


@dataclass
class _Weighed:
    scores: dict[str, float] = field(default_factory=dict)
    plain: dict[str, float] = field(default_factory=dict)
    supported: dict[str, list[str]] = field(default_factory=dict)
    contradicted: dict[str, list[str]] = field(default_factory=dict)
    down: dict[str, list[str]] = field(default_factory=dict)  # why a cause's evidence was weighed down
    up: dict[str, list[str]] = field(default_factory=dict)  # why a cause's evidence was weighed up
    context: dict[str, str] = field(default_factory=dict)  # causes the paste's stated context selected


def relevance(name: str, item: Evidence, ctx: PasteContext | None, bot_ip: str | None) -> tuple[float, str]:
    """How much ``name`` (observed as ``item``) explains the paste, and why (empty when neutral)."""
    if ctx is None or name.startswith("user."):
        return 1.0, ""
    if name in CONFIG_CONTEXT:
        signals, label = CONFIG_CONTEXT[name]
        if ctx.signals & signals:
            return RELATED_CONFIG, f"the paste involves {label}, which this setting governs"
        return UNRELATED_CONFIG, f"a configuration observation that explains nothing in the paste (no {label} involved)"
    factor, why = 1.0, ""
    if name in _BOT_DENIAL and _is_bot_ip(item):
        ip = str(item.data.get("client_ip") or bot_ip or "")
        if ctx.client_ip and ctx.client_ip == ip:
            return 1.0, ""
        if ctx.service:
            factor, why = BOT_IP_OTHER_CLIENT, (
                f"the registry denied the bot's own egress IP {ip}: that says nothing about why {ctx.service} fails"
            )
        elif ctx.client_ip:
            factor, why = (
                BOT_IP_OTHER_CLIENT,
                f"the registry denied the bot's own egress IP {ip}, not the paste's client {ctx.client_ip}",
            )
        else:
            factor, why = (
                BOT_IP_UNKNOWN_CLIENT,
                f"the registry denied the bot's own egress IP {ip}; the paste's client may use another",
            )
    if name in DENIAL_CONFIG | _BOT_DENIAL and ctx.steps and "denied" not in ctx.steps:
        # A denial is a fast 403; a paste that fails elsewhere (timeout, DNS, TLS) is not explained by it.
        failing = "/".join(sorted(ctx.steps))
        return factor * OTHER_STEP, "; ".join(
            w for w in (why, f"it explains a 403 denial, while the paste fails at the {failing} step") if w
        )
    if factor != 1.0:
        return factor, why
    step = STEP_OF_FINDING.get(name)
    if step and item.status in (Status.FAIL, Status.WARN):
        host_match = item.target.lower() in ctx.hosts
        step_match = step in ctx.steps
        if host_match and step_match:
            return MATCH_BOTH, f"matches the paste: {item.target} fails at the {step} step there too"
        if host_match:
            return MATCH_ONE, f"concerns {item.target}, a host the paste shows failing"
        if step_match:
            return MATCH_ONE, f"the same step ({step}) fails in the paste"
    return 1.0, ""


def _is_bot_ip(item: Evidence) -> bool:
    if item.check == "probe":
        return is_bot_vantage(item)
    return bool(item.data.get("bot_ip"))


def _findings(evidence: Iterable[Evidence]) -> dict[str, list[Evidence]]:
    found: dict[str, list[Evidence]] = {}
    for item in evidence:
        for name in item.findings:
            found.setdefault(name, []).append(item)
    return found


def _describe(item: Evidence, factor: float = 1.0, why: str = "") -> str:
    line = f"{item.check} {item.target}: {item.detail} ({item.vantage})"
    if factor != 1.0 and why:
        line += f" — weighed ×{factor:g}: {why}"
    return line


def _weigh(
    kb: KnowledgeBase,
    text_scores: dict[str, float],
    findings: dict[str, list[Evidence]],
    ctx: PasteContext | None,
    bot_ip: str | None,
) -> _Weighed:
    out = _Weighed(dict(text_scores), dict(text_scores))
    for card in kb.cards.values():
        if card.id == UNRELATED:
            continue
        delta = plain = 0.0
        hypothesis = card.id in text_scores
        for name, weight in card.live.confirm.items():
            items = findings.get(name)
            if not items:
                continue
            # A healthy observation (dns.ok, probe.reachable) can support a hypothesis the text
            # raised, but never creates one: only problems found live can.
            if not hypothesis and all(e.status == Status.OK for e in items):
                continue
            weighed = [(item, *relevance(name, item, ctx, bot_ip)) for item in items]
            factor = max(f for _, f, _ in weighed)
            delta += weight * factor
            plain += weight
            lines = out.supported.setdefault(card.id, [])
            lines.extend(line for line in (_describe(i, f, w) for i, f, w in weighed) if line not in lines)
            for _, f, why in weighed:
                if why and f < 1.0:
                    out.down.setdefault(card.id, []).append(why)
                elif why and f > 1.0:
                    out.up.setdefault(card.id, []).append(why)
        for name, weight in card.live.rule_out.items():
            items = findings.get(name)
            if not items:
                continue
            # An observation that explains little of the paste (the bot's own denial, for one)
            # contradicts little too; one that matches the paste contradicts in full.
            weighed = [(item, *relevance(name, item, ctx, bot_ip)) for item in items]
            factor = min(1.0, max(f for _, f, _ in weighed))
            delta -= weight * factor
            plain -= weight
            against = out.contradicted.setdefault(card.id, [])
            against.extend(line for line in (_describe(i, min(1.0, f), w) for i, f, w in weighed) if line not in against)
        if ctx is not None and delta > 0 and card.live.context and ctx.signals & set(card.live.context):
            named = sorted(ctx.signals & set(card.live.context))
            delta *= CONTEXT_BOOST
            label = ", ".join(dict.fromkeys(_SERVICE_NAMES.get(n, n.replace("_", " ")) for n in named[:3]))
            note = f"the paste is about {label}, and the live configuration supports this cause"
            out.up.setdefault(card.id, []).append(note)
            out.context[card.id] = f"Live evidence weighed ×{CONTEXT_BOOST:g}: {note}."
        if delta or plain or card.id in text_scores:
            out.scores[card.id] = out.scores.get(card.id, 0.0) + delta
            out.plain[card.id] = out.plain.get(card.id, 0.0) + plain
    return out


def rerank(
    diagnosis: Diagnosis | None,
    evidence: list[Evidence],
    *,
    registry: str,
    lang: str = "en",
    kb: KnowledgeBase | None = None,
    extraction: Extraction | None = None,
) -> Diagnosis:
    """Combine text scores (if any) with live findings weighed by what they explain."""
    kb = kb or default_knowledge()
    findings = _findings(evidence)
    text_scores: dict[str, float] = {}
    reasons: dict[str, list[str]] = {}
    if diagnosis is not None:
        for cause in diagnosis.causes:
            if cause.id != UNRELATED:
                text_scores[cause.id] = cause.score
                reasons[cause.id] = list(cause.reasons)
        facts = diagnosis.facts
    else:
        facts = Facts(registry=registry.split(".")[0], login_server=registry if "." in registry else None)
        facts.registry_host = facts.login_server
    ctx = PasteContext.of(facts) if diagnosis is not None else None
    live = LiveFacts.from_evidence(
        evidence, facts, pasted=diagnosis is not None, signals=frozenset(facts.signals)
    )
    weighed = _weigh(kb, text_scores, findings, ctx, live.values.get("bot_ip"))
    scores = {k: v for k, v in weighed.scores.items() if v > 0}
    plain = {k: v for k, v in weighed.plain.items() if v > 0}
    # Healthy only while everything a client touches (DNS, endpoints) passed; control-plane
    # failures (ARM, logs) are shown as evidence but do not make a reachable registry unhealthy.
    failed = [e for e in evidence if e.status == Status.FAIL and e.check in ("dns", "probe", "tls")]
    # An address the address policy refused was never probed: when no other endpoint address
    # was, nothing answered for the registry and "healthy" would be a guess.
    unprobed = [e for e in evidence if e.check == "probe" and (e.data or {}).get("outcome") == UNSAFE_ADDRESS]
    untested = bool(unprobed) and not any(e.check == "probe" and e.status != Status.SKIPPED for e in evidence)
    if untested:
        _explain_untested(unprobed, scores, reasons)
    elif not failed:
        scores[HEALTHY] = plain[HEALTHY] = HEALTHY_SCORE if diagnosis is None else 0.5
    elif not scores:
        # Something failed that no card explains: never call that healthy. Say the checks failed
        # from where they ran and let the evidence speak (the bot's own network is then the client).
        scores["client-firewall"] = 0.5
        reasons.setdefault("client-firewall", []).append(
            f"{len(failed)} live check(s) failed from {failed[0].vantage} and no more specific cause matched."
        )
    for cause_id, note in weighed.context.items():
        reasons.setdefault(cause_id, []).append(note)
    _explain_reordering(scores, plain, weighed, reasons)
    _fill_live_facts(facts, evidence)
    combined = (diagnosis.evidence if diagnosis is not None else []) + list(evidence)
    result = _build(
        kb,
        extraction,
        facts,
        scores,
        reasons,
        weighed.supported,
        weighed.contradicted,
        lang,
        text=diagnosis.redacted_text if diagnosis else "",
        evidence=combined,
        live=True,
        live_facts=live,
    )
    _add_permission_steps(result, live, lang)
    return result


#: The ``outcome`` of a probe line for an address the address policy refused (``bot/checks/probe.py``).
UNSAFE_ADDRESS = "unsafe-address"


def _explain_untested(unprobed: list[Evidence], scores: dict[str, float], reasons: dict[str, list[str]]) -> None:
    """Every address DNS gave for the registry was refused: say so on the leading cause.

    A cause the findings already support keeps the lead. Otherwise: a private address without
    its privatelink CNAME is the private DNS setup (``registry-private-endpoint``, as
    docs/address-policy.md says); any other refused answer (metadata, link-local, reserved)
    means the resolver that gave it misbehaves (``client-dns``, the bot being the client).
    """
    first = unprobed[0]
    shown = "; ".join(dict.fromkeys(e.detail for e in unprobed[:3]))
    note = f"Nothing was probed from {first.vantage}: DNS answered {first.target} only with refused addresses ({shown})."
    if not scores:
        private = any(_private_endpoint_range(str((e.data or {}).get("address") or "")) for e in unprobed)
        scores["registry-private-endpoint" if private else "client-dns"] = 0.5
    lead = max(scores, key=lambda k: (scores[k], k))
    reasons.setdefault(lead, []).append(note)


def _private_endpoint_range(address: str) -> bool:
    """In a range a private endpoint may use, and not one of the metadata addresses listed there."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    metadata = {ipaddress.ip_address(entry.address) for entry in METADATA_ADDRESSES}
    return ip not in metadata and any(ip in net for net in PRIVATE_ENDPOINT_NETWORKS)


def _explain_reordering(
    scores: dict[str, float], plain: dict[str, float], weighed: _Weighed, reasons: dict[str, list[str]]
) -> None:
    """When weighing changed the leader, say why it leads and why the former leader fell."""
    if not scores or not plain:
        return
    top = max(scores, key=lambda k: (scores[k], k))
    was = max(plain, key=lambda k: (plain[k], k))
    if top == was or (was not in scores and was not in plain):
        return
    up = "; ".join(dict.fromkeys(weighed.up.get(top, []))) or f"the evidence for {top} was not weighed down"
    down = "; ".join(dict.fromkeys(weighed.down.get(was, []))) or "other evidence now outweighs it"
    reasons.setdefault(top, []).append(
        f"Ranked above {was} on what the evidence explains: {up}. {was} was weighed down: {down}."
    )
    weighed.contradicted.setdefault(was, []).append(f"weighed down, it explains less of the paste: {down}")


def _add_permission_steps(diagnosis: Diagnosis, live: LiveFacts, lang: str) -> None:
    """The bot's own missing permissions, for its operator; the diagnosis above still stands."""
    for sentence, command in live.permission_steps:
        text = (
            f"For the bot's operator: {sentence} (the diagnosis above rests on the paste and the checks that ran)."
            if lang != "ja"
            else f"ボットの運用者へ: {sentence} (上の診断は貼り付けと実行できたチェックに基づきます)。"
        )
        diagnosis.fix.append(FixStep(text=text, command=command, complete="<" not in command))


def _fill_live_facts(facts: Facts, evidence: list[Evidence]) -> None:
    """Let live data fill the values the text-based templates need (never the client's IP from the bot)."""
    for item in evidence:  # the data endpoint that failed is the one the fix must name first
        failed_here = {"probe.data_endpoint_blocked", "dns.data_endpoint_missing", "dns.pe_record_missing"}
        if failed_here & set(item.findings) and ".data." in item.target:
            facts.data_endpoints = [item.target, *[h for h in facts.data_endpoints if h != item.target]]
            facts.region = facts.region or item.target.split(".")[1]
            break
    for item in evidence:
        data = item.data or {}
        # The IP a registry saw is the client's only when the client was this vantage: a probe
        # from the user's machine (a pasted report). The bot's own IP is ``bot_ip`` in live facts.
        if not facts.client_ip and isinstance(data.get("client_ip"), str) and not is_bot_vantage(item):
            facts.client_ip = data["client_ip"]
        resource_id = data.get("resource_id")
        if not facts.resource_group and isinstance(resource_id, str) and "/resourceGroups/" in resource_id:
            facts.resource_group = resource_id.split("/resourceGroups/", 1)[1].split("/", 1)[0]
        if not facts.region and isinstance(data.get("location"), str) and data["location"]:
            facts.region = data["location"]
        if not facts.proxy and isinstance(data.get("proxy"), str) and data["proxy"]:
            facts.proxy = data["proxy"]
        if item.check == "probe" and ".data." in item.target and item.target not in facts.data_endpoints:
            facts.data_endpoints.append(item.target)
        if not facts.region and ".data." in item.target:
            facts.region = item.target.split(".")[1]
