"""Read an ``acrcheck probe`` report pasted back into chat.

The bot's network is not the user's: when a user runs ``acrcheck probe REGISTRY`` where the
failure happens and pastes the report, its lines become evidence observed *from the user's
machine*. Their findings carry a ``user.`` prefix so knowledge cards can weigh what the user
saw differently from what the bot saw (a timeout from the user's machine is strong evidence of
client-side egress; from the bot's it is not). The format is documented in ``bot.cli.live``.
"""

from __future__ import annotations

import re
import shlex

from bot.engine.models import Evidence, Status

HEADER = re.compile(r"^acrcheck-probe v1 (\S{1,253})\s*$", re.MULTILINE)
_MAX_LINES = 200

_DNS_FAIL = {
    "nxdomain": "dns.nxdomain",
    "servfail": "dns.servfail",
    "refused": "dns.servfail",
    "timeout": "dns.timeout",
    "noanswer": "dns.noanswer",
}
_PROBE = {
    "401-bearer": "probe.reachable",
    "200-anonymous": "probe.anonymous",
    "denied": "probe.denied",
    "timeout": "probe.timeout",
    "refused": "probe.refused",
    "reset": "probe.reset",
    "tls-untrusted": "probe.tls_untrusted",
    "tls-intercepted": "probe.tls_intercepted",
    "tls-name-mismatch": "probe.tls_name_mismatch",
    "tls-expired": "probe.tls_expired",
    "tls-not-yet-valid": "probe.tls_not_yet_valid",
    **{f"redirect-{code}": "probe.redirect" for code in (301, 302, 303, 307, 308)},
    "proxy-eof": "proxy.eof",
    "proxy-403": "proxy.forbidden",
    "proxy-407": "proxy.auth_required",
    "proxy-unreachable": "proxy.unreachable",
    "proxy-silent": "proxy.error",
    "proxy-error": "proxy.error",
}
_STATUS = {"ok": Status.OK, "warn": Status.WARN, "fail": Status.FAIL, "skipped": Status.SKIPPED}


def _dns_findings(status: str, code: str) -> list[str]:
    if status != "ok" and code in _DNS_FAIL:
        return [_DNS_FAIL[code]]
    found = ["dns.ok"]
    scope = code
    if code.startswith("privatelink-"):
        found.append("dns.privatelink_chain")
        scope = code.removeprefix("privatelink-")
        if scope == "public":
            found.append("dns.privatelink_public_answer")
    if scope == "private":
        found.append("dns.private_answer")
    elif scope == "public":
        found.append("dns.public_answer")
    return found


def _probe_findings(code: str) -> list[str]:
    if code in _PROBE:
        return [_PROBE[code]]
    if code.startswith("http-"):
        status = code.removeprefix("http-")
        if status.startswith("5"):
            return ["probe.server_error"]
        if status == "403":
            return ["probe.forbidden_other"]
    if code.startswith("proxy-"):
        return ["proxy.error"]
    return []


def parse_probe_report(text: str) -> tuple[str | None, list[Evidence]]:
    """Return the login server the report is about and its lines as user-vantage evidence."""
    header = HEADER.search(text)
    if header is None:
        return None, []
    login_server = header.group(1).lower()
    vantage = "the user's machine (acrcheck probe)"
    evidence: list[Evidence] = []
    login_ok = False
    data_failed: list[Evidence] = []
    lines = text[header.end() :].splitlines()[:_MAX_LINES]
    for line in lines:
        try:
            parts = shlex.split(line.strip())
        except ValueError:
            continue
        if not parts:
            continue
        if parts[0] == "end":
            break
        if parts[0] == "vantage" and len(parts) > 1:
            vantage = f"the user's machine: {parts[1][:80]} (acrcheck probe)"
            continue
        if parts[0] == "dns" and len(parts) >= 4:
            host, status, code = parts[1].lower(), parts[2], parts[3]
            findings = _dns_findings(status, code)
            # A privatelink name answering publicly resolves "fine" but is the problem itself.
            level = Status.WARN if "dns.privatelink_public_answer" in findings else _STATUS.get(status, Status.WARN)
            item = Evidence("dns", host, vantage, level, f"DNS {status}: {code}", {}, 0.0, [])
        elif parts[0] == "probe" and len(parts) >= 5:
            host, address, status, code = parts[1].lower(), parts[2], parts[3], parts[4]
            findings = _probe_findings(code)
            data: dict[str, str] = {"address": address}
            for extra in parts[5:]:
                key, _, value = extra.partition("=")
                if key == "ip" and value:
                    data["client_ip"] = value
            item = Evidence(
                "probe",
                host,
                vantage,
                _STATUS.get(status, Status.WARN),
                f"HTTPS /v2/ via {address}: {code}",
                data,
                0.0,
                [],
            )
            if host == login_server and status == "ok":
                login_ok = True
        else:
            continue
        is_data = ".data." in item.target or ".blob.core." in item.target
        if is_data and item.status == Status.FAIL:
            data_failed.append(item)
        item.findings = [f"user.{name}" for name in findings]
        evidence.append(item)
    if login_ok:
        for item in data_failed:
            extra = "user.probe.data_endpoint_blocked" if item.check == "probe" else "user.dns.data_endpoint_missing"
            item.findings.append(extra)
    return login_server, evidence
