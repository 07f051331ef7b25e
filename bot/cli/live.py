"""CLI commands for live checks: ``acrcheck check REGISTRY [--json]`` and ``acrcheck probe REGISTRY``.

``check`` runs every live check from this machine (DNS, probes, ARM, logs) and ranks causes
with the classifier. ``probe`` runs only the client-side checks (DNS, TCP/TLS, ``/v2/``) so a
user can run it where the failure happens and paste the report back to the bot; its output is
a small, stable, line-based format that the text extractor recognises.

``probe`` report format, version 1 (one record per line, space-separated tokens split like
``shlex.split``; a value that is empty or holds whitespace, quotes or backslashes is
double-quoted, with ``\\`` and ``"`` inside it backslash-escaped)::

    acrcheck-probe v1 <login_server>
    vantage "<where it ran>"
    dns <host> <status> <code> [addrs=<ip>,<ip>] [chain=<name>><name>...]   (addrs: the first 8)
    probe <host> <ip|proxy> <status> <code> [ip=<client ip>] [http=<status>] [issuer="<CA>"] [corr=<id>]
    end ok=<n> warn=<n> fail=<n> skipped=<n> ms=<total>

``<status>`` is ``ok | warn | fail | skipped``. DNS ``<code>`` on success is the answer's scope,
``private | public | mixed | loopback | other``, prefixed ``privatelink-`` when the CNAME chain
goes through privatelink (e.g. ``privatelink-public``: the private zone is not used); on failure
it is ``nxdomain | servfail | refused | timeout | noanswer | error``. Probe ``<code>`` is one of
``401-bearer`` (reachable), ``200-anonymous``, ``denied`` (403 DENIED; ``ip=`` is the client IP
the registry saw), ``http-<n>``, ``timeout``, ``refused``, ``reset``, ``tls-untrusted``,
``tls-intercepted``, ``tls-name-mismatch``, ``tls-error``, ``proxy-eof``, ``proxy-403``,
``proxy-407``, ``proxy-<n>``, ``proxy-unreachable``, ``proxy-silent``, ``proxy-error``,
``unsafe-address``, ``error``. Example::

    acrcheck-probe v1 myreg.azurecr.io
    vantage "this machine"
    dns myreg.azurecr.io fail nxdomain
    probe myreg.azurecr.io 20.61.1.10 ok 401-bearer issuer="Microsoft Azure RSA TLS Issuing CA 03"
    probe myreg.azurecr.io 20.61.1.10 fail denied ip=1.2.3.4 http=403
    end ok=1 warn=0 fail=2 skipped=0 ms=412

Exit codes: 0 when every check passed, 1 when any check failed or the address policy refused
every address DNS gave for the registry (nothing could be probed), 2 for a refused registry
argument (the reason goes to stderr). Handlers are ``args.func(args) -> int``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

from bot.engine.hostguard import RegistryTarget, UnsafeTarget, registry_target
from bot.engine.models import Diagnosis, Evidence, Status

if TYPE_CHECKING:
    from bot.config import Settings

PROBE_FORMAT_VERSION = "v1"
#: Addresses a ``dns`` report line names (the evidence lines name as many).
SHOWN_ADDRESSES = 8


def _settings() -> Settings:
    """The validated settings (imported here: registering the commands must stay cheap)."""
    from bot.config import load_settings

    return load_settings()


def _run_checks(*args: Any, **kwargs: Any) -> list[Evidence]:
    """Run the live checks; what they report passes the secret redactor before it is printed."""
    from bot.checks.run import run_checks_sync
    from bot.engine.scrub import scrub_evidence

    return scrub_evidence(run_checks_sync(*args, **kwargs))


def add_live_commands(subparsers: Any) -> None:
    """Register ``check`` and ``probe`` on an argparse subparsers object."""
    check = subparsers.add_parser("check", help="run live checks (DNS, probes, ARM, logs) for a registry")
    check.add_argument("registry", help="registry name (myreg) or endpoint (myreg.azurecr.io)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--client-ip", help="client egress IP to test against the registry's IP rules")
    check.add_argument("--lang", choices=("en", "ja"), default=None)
    check.set_defaults(func=cmd_check)
    probe = subparsers.add_parser("probe", help="client-side checks from this machine; paste the output back")
    probe.add_argument("registry", help="registry name (myreg) or endpoint (myreg.azurecr.io)")
    probe.add_argument(
        "--data-region",
        action="append",
        default=[],
        metavar="REGION",
        help="also test the dedicated data endpoint of this region (repeatable)",
    )
    probe.set_defaults(func=cmd_probe)


def _target_or_exit(value: str, err: TextIO) -> RegistryTarget | None:
    try:
        return registry_target(value)
    except UnsafeTarget as exc:
        print(f"acrcheck: {exc}", file=err)
        return None


# ============================================================================ check


def cmd_check(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    target = _target_or_exit(args.registry, err)
    if target is None:
        return 2
    from bot.diagnose import check_registry_sync

    settings = _settings()
    diagnosis = check_registry_sync(
        args.registry, lang=args.lang or settings.lang, settings=settings, client_ip=getattr(args, "client_ip", None)
    )
    evidence, ranked = diagnosis.evidence, ranked_causes(diagnosis)
    if args.json:
        json.dump(check_payload(target, evidence, ranked), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        out.write(check_text(target, evidence, ranked))
    return 0 if all_passed(evidence) else 1


def ranked_causes(diagnosis: Diagnosis) -> dict[str, Any]:
    """The cause, the ranked causes and the fix of a live diagnosis, as ``check`` prints them."""
    return {
        "cause": diagnosis.cause,
        "causes": [{"id": c.id, "confidence": round(c.confidence, 3)} for c in diagnosis.causes],
        "fix": [{"text": step.text, "command": step.command} for step in diagnosis.fix],
    }


def all_passed(evidence: list[Evidence]) -> bool:
    """Exit 0 means every check passed: no check failed, and something was probed.

    When the address policy refused every address DNS gave (docs/address-policy.md), nothing
    answered for the registry: no check failed, yet none passed either.
    """
    from bot.engine.rerank import UNSAFE_ADDRESS  # here: importing the classifier would slow ``acrcheck --help``

    if any(ev.status == Status.FAIL for ev in evidence):
        return False
    refused = any(ev.check == "probe" and (ev.data or {}).get("outcome") == UNSAFE_ADDRESS for ev in evidence)
    probed = any(ev.check == "probe" and ev.status != Status.SKIPPED for ev in evidence)
    return probed or not refused


def check_payload(target: RegistryTarget, evidence: list[Evidence], ranked: dict[str, Any]) -> dict[str, Any]:
    return {
        "registry": target.login_server,
        "cause": ranked["cause"],
        "causes": ranked["causes"],
        "evidence": [
            {
                "check": ev.check,
                "target": ev.target,
                "vantage": ev.vantage,
                "status": str(ev.status),
                "detail": ev.detail,
                "duration_ms": round(ev.duration_ms, 1),
                "findings": list(ev.findings),
            }
            for ev in evidence
        ],
        "fix": ranked["fix"],
    }


def check_text(target: RegistryTarget, evidence: list[Evidence], ranked: dict[str, Any]) -> str:
    lines = [f"acrcheck check {target.login_server}"]
    if ranked["causes"]:
        top = ranked["causes"][0]
        lines.append(f"likely cause: {ranked['cause']} ({top['confidence']:.0%})")
    for ev in evidence:
        lines.append(
            f"[{ev.status}] {ev.check} {ev.target}: {ev.detail} ({ev.vantage}, {ev.duration_ms:.0f} ms)"
        )
    if ranked["fix"]:
        lines.append("fix:")
        for step in ranked["fix"]:
            lines.append(
                f"  - {step['text']}" + (f"\n      {step['command']}" if step.get("command") else "")
            )
    return "\n".join(lines) + "\n"


# ============================================================================ probe


def cmd_probe(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    target = _target_or_exit(args.registry, err)
    if target is None:
        return 2
    extra: list[str] = []
    for region in getattr(args, "data_region", []) or []:
        label, suffix = target.login_server.split(".", 1)
        host = f"{label}.{region.strip().lower()}.data.{suffix}"
        if _target_or_exit(host, err) is None:
            return 2
        extra.append(host)
    settings = _settings()
    if settings.vantage_name == type(settings).model_fields["vantage_name"].default:
        settings = settings.model_copy(update={"vantage_name": "this machine"})
    started = time.perf_counter()
    evidence = _run_checks(target, settings, hypotheses=["dns", "probe"], extra_hosts=extra)
    out.write(probe_report(target, evidence, settings.vantage_name, (time.perf_counter() - started) * 1000.0))
    return 0 if all_passed(evidence) else 1


def _quote(value: str) -> str:
    """One report token that ``shlex.split`` (what ``bot.engine.probe_report`` uses) gives back unchanged.

    Plain values stay bare. Empty values and values with whitespace, quotes or backslashes are
    double-quoted with ``\\`` and ``"`` backslash-escaped, the only escapes POSIX shlex honours
    inside double quotes (so ``O'Brien CA`` or ``bob's-laptop`` survive). Control characters
    become spaces: a report line never breaks.
    """
    value = "".join(ch if ch.isprintable() else " " for ch in str(value)).strip()
    if value and not any(ch.isspace() or ch in "'\"\\" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dns_code(ev: Evidence) -> str:
    data = ev.data
    if ev.status == Status.SKIPPED:
        return "error"
    if not data.get("addresses"):
        return {
            "NXDOMAIN": "nxdomain",
            "SERVFAIL": "servfail",
            "REFUSED": "refused",
            "TIMEOUT": "timeout",
            "NOANSWER": "noanswer",
        }.get(str(data.get("rcode", "")), "timeout" if "dns.timeout" in ev.findings else "error")
    scopes = set((data.get("scopes") or {}).values())
    scope = scopes.pop() if len(scopes) == 1 else ("mixed" if scopes else "other")
    return f"privatelink-{scope}" if data.get("privatelink") else scope


def probe_code(ev: Evidence) -> str:
    outcome = ev.data.get("outcome")
    if outcome:
        return str(outcome)
    for finding, code in (("probe.timeout", "timeout"), ("proxy.eof", "proxy-eof")):
        if finding in ev.findings:
            return code
    return "error"


def probe_report(target: RegistryTarget, evidence: list[Evidence], vantage: str, total_ms: float) -> str:
    """Render the v1 report (see the module docstring)."""
    lines = [f"acrcheck-probe {PROBE_FORMAT_VERSION} {target.login_server}", f"vantage {_quote(vantage)}"]
    for ev in evidence:
        if ev.check == "dns":
            if not ev.data.get("rcode"):
                continue  # notes, not a lookup
            line = f"dns {ev.target} {ev.status} {dns_code(ev)}"
            if ev.data.get("addresses"):
                line += " addrs=" + ",".join(ev.data["addresses"][:SHOWN_ADDRESSES])  # one short line
            if len(ev.data.get("chain") or []) > 1:
                line += " chain=" + _quote(">".join(str(name) for name in ev.data["chain"]))
            lines.append(line)
        elif ev.check == "probe":
            where = ev.data.get("address") or ("proxy" if ev.data.get("via_proxy") else "-")
            line = f"probe {ev.target} {where} {ev.status} {probe_code(ev)}"
            if ev.data.get("client_ip"):
                line += f" ip={ev.data['client_ip']}"
            if ev.data.get("http_status"):
                line += f" http={ev.data['http_status']}"
            if ev.data.get("cert_issuer"):
                line += f" issuer={_quote(str(ev.data['cert_issuer']))}"
            if ev.data.get("correlation_id"):
                line += f" corr={_quote(str(ev.data['correlation_id']))}"
            lines.append(line)
        elif ev.check == "guard":
            lines.append(f"guard {ev.target} skipped refused")
    counts = Counter(str(ev.status) for ev in evidence if ev.check in ("dns", "probe"))
    lines.append(
        f"end ok={counts['ok']} warn={counts['warn']} fail={counts['fail']} skipped={counts['skipped']} "
        f"ms={total_ms:.0f}"
    )
    return "\n".join(lines) + "\n"
