"""DNS check: A/AAAA with the full CNAME chain, as the bot's resolver sees it.

Most ACR network problems show up first in DNS: a typo or wrong cloud is NXDOMAIN, a private
endpoint whose zone is not linked resolves through ``privatelink`` to a *public* address, and
a replica whose data-endpoint record is missing breaks layer downloads while logins work. The
OS resolver (``gethostbyname``, what ``az acr check-health`` uses) hides the chain and folds all
failures into one error, so this check talks DNS itself with dnspython and keeps the rcode.

The resolver is the system configuration, or ``settings.dns_servers`` ("host[:port]") when set,
which is how corporate resolvers, Azure DNS (168.63.129.16) or a test fake are selected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from bot.config import Settings
from bot.engine.models import Evidence, Status

_PRIVATE_NETS = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]


#: Addresses an evidence line names; a hostile resolver can answer a thousand (25 KB of text per line).
SHOWN_ADDRESSES = 8


def shown(items: list[str], limit: int = SHOWN_ADDRESSES) -> str:
    """``a, b, c`` — the first ``limit`` items, then ``and N more``: evidence lines stay short."""
    text = ", ".join(items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


class DnsConfigError(ValueError):
    """``settings.dns_servers`` holds something that is not ``ip[:port]``."""


@dataclass(slots=True)
class DnsAnswer:
    """What one name resolved to. ``rcode`` is a DNS rcode name or ``TIMEOUT``."""

    host: str
    rcode: str = "NOERROR"
    chain: list[str] = field(default_factory=list)  # qname first, then each CNAME target
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def addresses(self) -> list[str]:
        return [*self.a, *self.aaaa]


def ip_scope(address: str) -> str:
    """Classify an answer: ``private``, ``public``, ``loopback``, ``link-local`` or ``other``.

    Private means RFC1918, CGNAT or ULA. The split matters: a privatelink chain ending in a
    private address is a working private endpoint; the same chain ending in a public one means
    the private zone was not used.
    """
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if any(ip in net for net in _PRIVATE_NETS):
        return "private"
    if ip.is_global:
        return "public"
    return "other"


def parse_server(spec: str) -> tuple[str, int]:
    """``"10.0.0.4"``, ``"10.0.0.4:5353"``, ``"[fd00::1]:53"`` or ``"fd00::1"`` → (address, port).

    Anything else raises :class:`DnsConfigError` naming the offending value.
    """
    spec = str(spec).strip()
    host, port_text = spec, ""
    if spec.startswith("["):
        host, closed, rest = spec[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise DnsConfigError(f"DNS server {spec!r} must be [IPv6] with an optional :port")
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            raise DnsConfigError(f"DNS server {spec!r} has an empty port")
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        if not port_text:
            raise DnsConfigError(f"DNS server {spec!r} has an empty port")
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise DnsConfigError(f"DNS server {spec!r} must be an IP address with an optional port") from exc
    port = 53
    if port_text:
        if not port_text.isascii() or not port_text.isdigit():
            raise DnsConfigError(f"DNS server {spec!r} has a non-numeric port {port_text!r}")
        port = int(port_text)
    if not 0 < port < 65536:
        raise DnsConfigError(f"DNS server {spec!r} has an invalid port")
    return host, port


def make_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    """The configured resolvers, or the system's; lifetime bounded by ``settings.dns_timeout``.

    Raises :class:`DnsConfigError` for a bad ``dns_servers`` entry or a system without resolver
    configuration (no usable nameserver in /etc/resolv.conf).
    """
    if settings.dns_servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers: list[str | dns.nameserver.Nameserver] = []
        for spec in settings.dns_servers:
            host, port = parse_server(spec)
            servers.append(dns.nameserver.Do53Nameserver(host, port))
        resolver.nameservers = servers
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration as exc:
            raise DnsConfigError(
                "no system resolver configuration (no nameserver in /etc/resolv.conf); set dns_servers"
            ) from exc
        except (OSError, ValueError, dns.exception.DNSException) as exc:
            raise DnsConfigError(f"system resolver configuration unusable ({type(exc).__name__}: {exc})") from exc
    resolver.lifetime = settings.dns_timeout
    resolver.timeout = settings.dns_timeout
    resolver.use_search_by_default = False
    return resolver


def resolver_label(settings: Settings) -> str:
    return ",".join(settings.dns_servers) if settings.dns_servers else "system resolver"


async def resolve(
    host: str, settings: Settings, *, resolver: dns.asyncresolver.Resolver | None = None
) -> DnsAnswer:
    """Resolve A and AAAA concurrently and merge them into one :class:`DnsAnswer`."""
    resolver = resolver or make_resolver(settings)
    qname = dns.name.from_text(host)
    a_res, aaaa_res = await asyncio.gather(
        _query(resolver, qname, "A"), _query(resolver, qname, "AAAA"), return_exceptions=False
    )
    answer = DnsAnswer(host=host.rstrip("."))
    a_rcode, a_chain, a_addrs, a_err = a_res
    q_rcode, q_chain, q_addrs, q_err = aaaa_res
    answer.a, answer.aaaa = a_addrs, q_addrs
    answer.chain = _merge_chain(host, a_chain or q_chain)
    if a_addrs or q_addrs:
        answer.rcode = "NOERROR"
    else:
        # Report the most informative failure: a real error over an empty answer.
        (answer.rcode, answer.error, chain) = min(
            ((a_rcode, a_err, a_chain), (q_rcode, q_err, q_chain)), key=lambda r: _rank(r[0])
        )
        if answer.rcode in ("CNAME_LOOP", "CHAIN_TOO_LONG"):
            answer.chain = chain
        if answer.rcode == "NOERROR":
            answer.rcode = "NOANSWER"
    return answer


async def _query(
    resolver: dns.asyncresolver.Resolver, qname: dns.name.Name, rdtype: str
) -> tuple[str, list[str], list[str], str]:
    """One query → (rcode, chain, addresses, error text). Never raises for DNS outcomes."""
    try:
        result = await resolver.resolve(qname, rdtype, search=False)
    except dns.resolver.NXDOMAIN as exc:
        responses = exc.kwargs.get("responses") or {}
        return "NXDOMAIN", _chain_from_responses(list(responses.values())), [], "name does not exist"
    except dns.resolver.NoAnswer as exc:
        response = exc.kwargs.get("response")
        return "NOANSWER", _chain_from_responses([response] if response else []), [], ""
    except dns.resolver.NoNameservers as exc:
        return _nameserver_failure(qname, exc)
    except dns.exception.Timeout:
        return "TIMEOUT", [], [], "no answer from the resolver in time"
    except (dns.exception.DNSException, OSError) as exc:
        return "ERROR", [], [], f"{type(exc).__name__}: {_short(str(exc))}"
    chain = [
        str(rrset.name).rstrip(".") for rrset in result.response.answer if rrset.rdtype == dns.rdatatype.CNAME
    ]
    chain += [str(result.canonical_name).rstrip(".")]
    addresses = [rdata.to_text() for rdata in result.rrset] if result.rrset is not None else []
    return "NOERROR", chain, addresses, ""


#: How informative each resolver outcome is: a named failure beats a generic one.
_FAILURE_ORDER = ["CNAME_LOOP", "CHAIN_TOO_LONG", "NXDOMAIN", "SERVFAIL", "REFUSED", "NOTIMP", "FORMERR",
                  "TIMEOUT", "UNREACHABLE", "ERROR", "NOANSWER", "NOERROR"]  # fmt: skip


def _rank(rcode: str) -> int:
    return _FAILURE_ORDER.index(rcode) if rcode in _FAILURE_ORDER else _FAILURE_ORDER.index("ERROR")


def _nameserver_failure(qname: dns.name.Name, exc: dns.resolver.NoNameservers) -> tuple[str, list[str], list[str], str]:
    """Name the failure from what each resolver actually did (dnspython keeps it in ``errors``).

    Each entry is ``(server, tcp, port, rcode text or exception, response)``. A CNAME chain that
    exceeds dnspython's limit arrives as ``ChainTooLong``: the response then tells a loop (a name
    comes back) from a chain that is merely too long. The most informative outcome wins.
    """
    best: tuple[str, list[str], str] = ("SERVFAIL", [], "all resolvers failed")
    for entry in exc.kwargs.get("errors") or []:
        server = str(entry[0]) if entry else "?"
        error = entry[3] if len(entry) > 3 else None
        response = entry[4] if len(entry) > 4 else None
        if isinstance(error, dns.message.ChainTooLong):
            links = _cname_links(response)
            loop = _loop_in(links, qname)
            if loop:
                outcome = ("CNAME_LOOP", loop, "the CNAME chain loops: " + " → ".join(loop))
            else:
                walked = _walk(links, qname)
                outcome = (
                    "CHAIN_TOO_LONG",
                    walked[:20],  # the evidence keeps the start of the chain, not hundreds of names
                    f"the CNAME chain is too long ({len(walked) - 1}+ links; resolvers give up after "
                    f"{dns.message.MAX_CHAIN})",
                )
        elif isinstance(error, str):
            rcode = error.upper()
            outcome = (rcode, [], f"the resolver {server} answered {rcode}")
        elif isinstance(error, dns.exception.Timeout):
            outcome = ("TIMEOUT", [], f"the resolver {server} did not answer in time")
        elif isinstance(error, OSError):
            outcome = ("UNREACHABLE", [], f"the resolver {server} cannot be reached ({type(error).__name__})")
        elif error is not None:
            outcome = ("ERROR", [], f"the resolver {server} gave an unusable answer ({type(error).__name__}: {_short(str(error))})")
        else:
            continue
        if _rank(outcome[0]) < _rank(best[0]) or best[2] == "all resolvers failed":
            best = outcome
    rcode, chain, text = best
    return rcode, chain, [], text


def _cname_links(response: Any) -> dict[str, str]:
    links: dict[str, str] = {}
    if isinstance(response, dns.message.Message):
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                for rdata in rrset:
                    links.setdefault(str(rrset.name).rstrip(".").lower(), str(rdata.target).rstrip(".").lower())
    return links


def _walk(links: dict[str, str], qname: dns.name.Name) -> list[str]:
    name = str(qname).rstrip(".").lower()
    walked = [name]
    while name in links and len(walked) <= 1000:
        name = links[name]
        if name in walked:
            walked.append(name)
            break
        walked.append(name)
    return walked


def _loop_in(links: dict[str, str], qname: dns.name.Name) -> list[str]:
    """The names of the chain up to and including the first repeated one, or [] if no loop."""
    walked = _walk(links, qname)
    return walked if len(walked) > 1 and walked[-1] in walked[:-1] else []


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chain_from_responses(responses: list[Any]) -> list[str]:
    chain: list[str] = []
    for response in responses:
        if not isinstance(response, dns.message.Message):
            continue
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                chain.append(str(rrset.name).rstrip("."))
                chain.extend(str(rdata.target).rstrip(".") for rdata in rrset)
    return chain


def _merge_chain(host: str, chain: list[str]) -> list[str]:
    merged = [host.rstrip(".").lower()]
    for name in chain:
        name = name.lower()
        if name not in merged:
            merged.append(name)
    return merged


def evidence_from_answer(answer: DnsAnswer, settings: Settings, duration_ms: float) -> Evidence:
    """Turn an answer into Evidence with the findings vocabulary (``dns.*``)."""
    scopes = {addr: ip_scope(addr) for addr in answer.addresses}
    privatelink = any("privatelink" in name for name in answer.chain)
    data: dict[str, Any] = {
        "chain": answer.chain,
        "addresses": answer.addresses,
        "a": answer.a,
        "aaaa": answer.aaaa,
        "rcode": answer.rcode,
        "scopes": scopes,
        "privatelink": privatelink,
        "resolver": resolver_label(settings),
    }
    findings: list[str] = []
    if privatelink:
        findings.append("dns.privatelink_chain")
    chain_text = " → ".join(answer.chain)
    if answer.addresses:
        findings.append("dns.ok")
        kinds = set(scopes.values())
        if "private" in kinds:
            findings.append("dns.private_answer")
        if "public" in kinds:
            findings.append("dns.public_answer")
            if privatelink:
                findings.append("dns.privatelink_public_answer")
        listing = shown([f"{a} ({scopes[a]})" for a in answer.addresses])
        detail = f"resolves to {listing}"
        if len(answer.chain) > 1:
            detail += f" via {chain_text}"
        status = Status.OK
        if "dns.privatelink_public_answer" in findings:
            detail += (
                "; the chain goes through privatelink but the answer is public (private DNS zone not used)"
            )
            status = Status.WARN
        return Evidence(
            "dns", answer.host, settings.vantage_name, status, detail, data, duration_ms, findings
        )
    finding, detail = {
        "NXDOMAIN": ("dns.nxdomain", "does not exist (NXDOMAIN)"),
        "SERVFAIL": ("dns.servfail", "the resolver failed (SERVFAIL)"),
        "REFUSED": ("dns.servfail", "the resolver refused the query (REFUSED)"),
        "TIMEOUT": ("dns.timeout", f"no DNS answer within {settings.dns_timeout:g} s"),
        "NOANSWER": ("dns.noanswer", "the name exists but has no A/AAAA record"),
        "CNAME_LOOP": ("dns.cname_loop", f"no address: {answer.error}"),
        "CHAIN_TOO_LONG": ("dns.chain_too_long", f"no address: {answer.error}"),
        "UNREACHABLE": ("dns.servfail", f"lookup failed: {answer.error}"),
    }.get(answer.rcode, ("dns.servfail", f"lookup failed: {answer.error} ({answer.rcode})"))
    findings.append(finding)
    if len(answer.chain) > 1 and answer.rcode not in ("CNAME_LOOP", "CHAIN_TOO_LONG"):
        detail += f" (chain {chain_text})"
    detail += f" [{resolver_label(settings)}]"
    return Evidence(
        "dns", answer.host, settings.vantage_name, Status.FAIL, detail, data, duration_ms, findings
    )


async def check_dns(host: str, settings: Settings) -> tuple[Evidence, DnsAnswer]:
    """Resolve ``host`` (already guarded) and return the Evidence plus the raw answer for probes."""
    started = time.perf_counter()
    try:
        resolver = make_resolver(settings)
    except DnsConfigError as exc:
        return config_error_evidence(host, settings, str(exc), _ms(started))
    answer = await resolve(host, settings, resolver=resolver)
    return evidence_from_answer(answer, settings, _ms(started)), answer


def config_error_evidence(
    host: str, settings: Settings, reason: str, duration_ms: float = 0.0
) -> tuple[Evidence, DnsAnswer]:
    """The resolver configuration is unusable: a SKIPPED line naming the bad value, no findings
    (the registry's DNS was not tested, so nothing about it is known)."""
    answer = DnsAnswer(host=host, rcode="ERROR", error=reason)
    ev = Evidence(
        "dns",
        host,
        settings.vantage_name,
        Status.SKIPPED,
        f"DNS not checked: resolver configuration error: {reason}",
        {
            "rcode": "ERROR",
            "config_error": reason,
            "dns_servers": list(settings.dns_servers),
            "resolver": resolver_label(settings),
        },
        duration_ms,
        [],
    )
    return ev, answer


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
