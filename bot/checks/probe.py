"""Registry probe: TCP + TLS + unauthenticated ``GET /v2/`` to each resolved address.

``/v2/`` is the cheapest request that tells the network story: a 401 with a Bearer challenge
means the path to the registry is open (anything left is auth), a 403 ``DENIED`` means the
registry's own firewall refused this client (and names the egress IP it saw), and a timeout,
refusal or reset places the block on the path. The TLS step says whether a middlebox
re-signs traffic.

Design points, each fixing a measured pitfall (see the test-harness notes):

* Direct mode connects to every IP our own DNS check returned, with SNI and ``Host`` set to the
  registry name, so each replica/front end is tested and the certificate is verified against
  the registry name, not the IP. httpx pools by origin (the IP), not SNI, so the client never
  keeps connections alive: probing two registry names on one shared front-end IP must never
  reuse the first name's TLS session.
* Proxy mode (``settings.proxy``) sends the hostname URL through the proxy (the proxy resolves;
  httpcore ignores ``sni_hostname`` in tunnels anyway) and traces httpcore's phases: a failure
  before ``proxy.start_tls`` happened in the CONNECT exchange, i.e. the proxy, not the registry.
* A probe only ever connects to addresses that came from DNS for a guarded ACR host and that
  pass the address policy (docs/address-policy.md): never a metadata or platform-internal
  address, link-local or special-purpose; private ranges only behind a privatelink CNAME (a
  private endpoint); loopback only when the operator pointed ``dns_servers`` at a loopback
  resolver (a local resolver they run, or a test fake).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import ipaddress
import json
import logging
import re
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID

from bot.config import Settings
from bot.engine.hostguard import address_refusal as guard_address_refusal
from bot.engine.models import Evidence, Status

log = logging.getLogger(__name__)

USER_AGENT = "acrcheck-probe/1"
_MAX_BODY = 64 * 1024
_DENIED_IP_RE = re.compile(r"client with IP\s+(?:'|\\u0027)?([0-9a-fA-F.:]+)")
#: OpenSSL verification codes for a certificate outside its validity window.
_X509_EXPIRED, _X509_NOT_YET_VALID = 10, 9


@dataclass(slots=True)
class CertInfo:
    """The leaf certificate the probe was shown."""

    issuer: str = ""
    issuer_cn: str = ""
    issuer_org: str = ""
    subject: str = ""
    san: list[str] = field(default_factory=list)
    not_before: str = ""
    not_after: str = ""
    verified: bool = False

    def issued_by_expected(self, patterns: list[str] | tuple[str, ...]) -> bool:
        """Whether the issuer's CN (or, without one, its O) matches one of ``patterns`` (``*`` wildcard)."""
        names = [n.lower() for n in (self.issuer_cn, self.issuer_org) if n]
        return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in patterns for name in names)

    @property
    def validity(self) -> str:
        return f"valid {self.not_before[:19]}Z to {self.not_after[:19]}Z" if self.not_before else ""


@dataclass(slots=True)
class ProbeResult:
    """Raw outcome of one probe, before it is turned into Evidence."""

    host: str
    address: str | None  # None in proxy mode (the proxy resolved the name)
    port: int
    outcome: str  # machine code, e.g. "401-bearer", "denied", "timeout", "proxy-407"
    status: int | None = None
    www_authenticate: str = ""
    error_code: str = ""
    error_message: str = ""
    correlation_id: str = ""
    client_ip: str | None = None
    cert: CertInfo | None = None
    phases: list[str] = field(default_factory=list)
    exception: str = ""
    via_proxy: bool = False
    findings: list[str] = field(default_factory=list)
    detail: str = ""
    ok: bool = False
    redirect_location: str = ""
    intercepted: bool = False


# --------------------------------------------------------------------------- TLS


def build_ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """System trust store plus the operator's extra CA bundle (corporate roots, or a test CA)."""
    return _cached_context(str(ca_bundle) if ca_bundle else None)


class CaBundleError(ValueError):
    """``settings.ca_bundle`` cannot be read as PEM certificates."""


@lru_cache(maxsize=8)
def _cached_context(ca_bundle: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca_bundle:
        try:
            ctx.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise CaBundleError(f"ca_bundle {ca_bundle} cannot be loaded ({type(exc).__name__})") from exc
    return ctx


def _noverify_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def parse_cert(der: bytes, *, verified: bool) -> CertInfo:
    """Issuer, subject and SANs of a DER certificate (for the report and the interception test)."""
    cert = x509.load_der_x509_certificate(der)

    def attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
        values = name.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        san = [str(v) for v in san_ext.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        san = []
    issuer_cn = attr(cert.issuer, NameOID.COMMON_NAME)
    issuer_org = attr(cert.issuer, NameOID.ORGANIZATION_NAME)
    return CertInfo(
        issuer=", ".join(p for p in (issuer_cn, issuer_org) if p) or cert.issuer.rfc4514_string(),
        issuer_cn=issuer_cn,
        issuer_org=issuer_org,
        subject=attr(cert.subject, NameOID.COMMON_NAME),
        san=san,
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        verified=verified,
    )


# --------------------------------------------------------------------------- address policy


def address_refusal(address: str, settings: Settings, *, chain: tuple[str, ...] | list[str] = ()) -> str | None:
    """Why the probe must not connect to ``address`` (a DNS answer reached through ``chain``), or None.

    The policy itself lives in :func:`bot.engine.hostguard.address_refusal` (documented in
    docs/address-policy.md); the settings only say whether the resolvers are on loopback.
    """
    loopback = bool(settings.dns_servers) and all(_is_loopback_server(s) for s in settings.dns_servers)
    return guard_address_refusal(address, chain=tuple(chain), loopback_resolver=loopback)


def _is_loopback_server(spec: str) -> bool:
    host = spec.strip()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- probing


def redact_proxy(url: str | None) -> str:
    """Proxy URL without credentials, for anything shown or logged; never raises.

    Parsed by hand rather than with ``urlsplit`` so a malformed value (no scheme, a non-numeric
    port, an unencoded ``@`` or ``/`` in the password) still loses everything up to the last
    ``@`` of its authority instead of raising or echoing the password.
    """
    if not url:
        return ""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(url).strip())
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    if "@" in rest:
        rest = rest.rpartition("@")[2]
    hostport = re.split(r"[/?#\s]", rest, maxsplit=1)[0][:255]
    scheme = scheme.lower() if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,15}", scheme) else ""
    return f"{scheme}://{hostport}" if scheme else hostport


class ProxyConfigError(ValueError):
    """``settings.proxy`` cannot be used; the message never contains the proxy's credentials."""


#: Proxy schemes httpx understands (``socks5*`` needs the optional ``socksio`` package).
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_HOST_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$")


def check_proxy_url(url: str) -> None:
    """Raise :class:`ProxyConfigError` (credential-free message) unless ``url`` is a usable proxy URL."""
    label = redact_proxy(url) or "(empty)"
    try:
        parsed = httpx.URL(url)
        scheme, host, port = parsed.scheme, parsed.host, parsed.port
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ProxyConfigError(f"proxy {label} is not a valid URL ({type(exc).__name__})") from None
    if "://" not in url or scheme not in PROXY_SCHEMES:
        raise ProxyConfigError(
            f"proxy {label} must be a URL with a scheme ({', '.join(s + '://' for s in PROXY_SCHEMES)})"
        )
    if not host:
        raise ProxyConfigError(f"proxy {label} has no host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_RE.match(host):
            raise ProxyConfigError(f"proxy {label} has an invalid host name") from None
    if port is not None and not 0 < port < 65536:
        raise ProxyConfigError(f"proxy {label} has an invalid port")


def make_client(settings: Settings, *, proxy: bool) -> httpx.AsyncClient:
    """A probe client: no keep-alive (SNI must never be reused across names), no env proxies/CAs.

    Raises :class:`CaBundleError` for an unreadable ``ca_bundle`` and :class:`ProxyConfigError`
    for a ``proxy`` that cannot be used (bad URL, unsupported scheme, SOCKS without ``socksio``).
    """
    timeout = httpx.Timeout(settings.probe_timeout)
    verify = build_ssl_context(settings.ca_bundle)
    proxy_arg: httpx.Proxy | None = None
    if proxy and settings.proxy:
        check_proxy_url(settings.proxy)
        # An https:// proxy is verified with the same trust (system + ca_bundle) as registries.
        https_proxy = settings.proxy.lower().startswith("https://")
        try:
            proxy_arg = httpx.Proxy(settings.proxy, ssl_context=verify if https_proxy else None)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise ProxyConfigError(f"proxy {redact_proxy(settings.proxy)} cannot be used ({type(exc).__name__})") from None
    try:
        return httpx.AsyncClient(
            verify=verify,
            proxy=proxy_arg,
            trust_env=False,
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0, max_connections=32),
            headers={"User-Agent": USER_AGENT},
        )
    except ImportError:
        raise ProxyConfigError(
            f"proxy {redact_proxy(settings.proxy)} needs the optional 'socksio' package (pip install httpx[socks])"
        ) from None
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ProxyConfigError(f"proxy {redact_proxy(settings.proxy)} cannot be used ({type(exc).__name__})") from None


def probe_budget(settings: Settings) -> float:
    """Longest a probe may take: the request (``probe_timeout`` + 0.5 s) plus, after a certificate
    verification failure, a second handshake to read the certificate (``probe_timeout``)."""
    return 2 * settings.probe_timeout + 0.5


async def probe(
    host: str,
    address: str | None,
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    kind: str = "login_server",
    deadline: float | None = None,
) -> ProbeResult:
    """Probe ``host`` at ``address`` (direct) or by name through ``settings.proxy`` (address None).

    ``deadline`` (event-loop time) bounds the whole probe including the certificate explanation
    after a verification failure; the caller passes its own task deadline so the explanation only
    gets the time that is really left. Without it the probe takes at most :func:`probe_budget`.
    """
    loop = asyncio.get_running_loop()
    own_deadline = loop.time() + probe_budget(settings)
    deadline = own_deadline if deadline is None else min(deadline, own_deadline)
    port = settings.probe_port
    via_proxy = address is None
    result = ProbeResult(host=host, address=address, port=port, outcome="error", via_proxy=via_proxy)
    phases: list[str] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        phases.append(name)

    if via_proxy:
        url = f"https://{host}:{port}/v2/"
        extensions: dict[str, Any] = {"trace": trace}
    else:
        assert address is not None
        literal = f"[{address}]" if ":" in address else address
        url = f"https://{literal}:{port}/v2/"
        extensions = {"trace": trace, "sni_hostname": host}
    try:
        async with asyncio.timeout(settings.probe_timeout + 0.5):
            async with client.stream("GET", url, headers={"Host": host}, extensions=extensions) as response:
                result.cert = _cert_from_response(response)
                body = await _read_capped(response)
                _record_response(result, response, body)
    except TimeoutError:
        result.exception = "TimeoutError"
        result.phases = phases
        _classify_exception(result, httpx.ReadTimeout("overall probe timeout"), settings)
    except httpx.HTTPError as exc:
        result.exception = type(exc).__name__
        result.phases = phases
        _classify_exception(result, exc, settings)
        if {"probe.tls_untrusted", "probe.tls_name_mismatch", "probe.tls_expired", "probe.tls_not_yet_valid"} & set(
            result.findings
        ):
            await _explain_untrusted(result, settings, deadline)
    else:
        result.phases = phases
        _classify_response(result, kind, settings)
    return result


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _MAX_BODY:
            break
    return b"".join(chunks)[:_MAX_BODY]


def _cert_from_response(response: httpx.Response) -> CertInfo | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    ssl_object = stream.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return _safe_parse_cert(der, verified=True) if der else None


def _safe_parse_cert(der: bytes, *, verified: bool) -> CertInfo | None:
    """:func:`parse_cert`, or None when the certificate cannot be decoded (it is untrusted input)."""
    try:
        return parse_cert(der, verified=verified)
    except Exception as exc:  # cryptography raises ValueError and several non-ValueError types
        log.debug("certificate not decodable: %s", type(exc).__name__)
        return None


def _record_response(result: ProbeResult, response: httpx.Response, body: bytes) -> None:
    """Keep status and headers whatever the body is; read the Docker error JSON when it is well-formed."""
    result.status = response.status_code
    result.www_authenticate = response.headers.get("www-authenticate", "")
    result.correlation_id = response.headers.get("x-ms-correlation-request-id", "")
    result.redirect_location = _shown_location(response.headers.get("location", ""))
    text = body.decode("utf-8", "replace")
    try:
        code, message = _docker_error(text)
    except (KeyError, TypeError, ValueError, RecursionError, AttributeError, IndexError):
        code, message = "", None
    if message is None:  # not JSON, or not the {"errors": [{...}]} shape
        result.error_code = ""
        result.error_message = text[:200]
    else:
        result.error_code, result.error_message = code, message
    match = _DENIED_IP_RE.search(result.error_message or text[:2000])
    if match:
        result.client_ip = match.group(1).rstrip(".")


def _docker_error(text: str) -> tuple[str, str | None]:
    """(code, message) of the first entry of a registry error body ``{"errors": [{...}, ...]}``.

    A JSON body without ``errors`` gives ("", ""); a body that is not JSON, nests too deeply, or
    has another shape (``errors`` not a list of objects) gives ("", None).
    """
    if not text.strip():
        return "", ""
    payload = json.loads(text)
    if not isinstance(payload, dict):
        return "", None
    errors = payload.get("errors")
    if errors is None or errors == []:
        return "", ""
    if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
        return "", None
    first = errors[0]
    code, message = first.get("code", ""), first.get("message", "")
    if not isinstance(code, str | int | float | None) or not isinstance(message, str | int | float | None):
        return "", None
    return ("" if code is None else str(code))[:100], ("" if message is None else str(message))[:300]


def _where(result: ProbeResult) -> str:
    if result.via_proxy:
        return "via the proxy"
    return f"at {result.address}:{result.port}"


def _classify_response(result: ProbeResult, kind: str, settings: Settings) -> None:
    status = result.status or 0
    where = _where(result)
    if 300 <= status < 400 and kind != "data_endpoint":
        # A registry never redirects /v2/: whatever answers here is not the registry API (captive
        # portal, web filter, proxy login page, wrong front end). Data endpoints may redirect.
        location = result.redirect_location or "(no Location header)"
        result.outcome = f"redirect-{status}"
        result.findings.append("probe.redirect")
        result.detail = (
            f"{where}: /v2/ answered HTTP {status} redirecting to {location} "
            f"({_redirect_scope(result.host, location)}); a registry never redirects /v2/ — a captive portal, "
            "web filter or proxy login page is answering instead"
        )
        _note_issuer(result, settings)
        return
    if result.via_proxy:
        result.findings.append("proxy.ok")
    issuer = f"; certificate issued by {result.cert.issuer}" if result.cert else ""
    bearer = result.www_authenticate.lower().startswith("bearer")
    if status == 401 and bearer:
        result.outcome, result.ok = "401-bearer", True
        result.findings.append("probe.reachable")
        result.detail = f"reachable {where}: /v2/ answered 401 with a Bearer challenge (network OK){issuer}"
    elif status == 403 and result.error_code.upper() == "DENIED":
        result.outcome = "denied"
        result.findings.append("probe.denied")
        ip = f"; the registry saw this machine's egress IP {result.client_ip}" if result.client_ip else ""
        result.detail = f"denied by the registry firewall {where}: 403 DENIED{ip}"
    elif status == 200:
        result.outcome, result.ok = "200-anonymous", True
        result.findings.append("probe.anonymous" if kind != "data_endpoint" else "probe.reachable")
        result.detail = f"reachable {where}: /v2/ answered 200 without credentials (anonymous access){issuer}"
    elif status >= 500 or status == 429:
        result.outcome = f"http-{status}"
        result.findings.append("probe.server_error")
        result.detail = f"{where}: /v2/ answered HTTP {status} (registry-side error or throttling)"
    elif kind == "data_endpoint" and 400 <= status < 500:
        # A data endpoint has no /v2/ API; any HTTP answer proves the path is open.
        result.outcome, result.ok = f"http-{status}", True
        result.findings.append("probe.reachable")
        result.detail = f"reachable {where}: HTTP {status} from the data endpoint{issuer}"
    elif 400 <= status < 500:
        result.outcome = f"http-{status}"
        result.findings.append("probe.forbidden_other")
        code = f" {result.error_code}" if result.error_code else ""
        result.detail = f"{where}: /v2/ answered HTTP {status}{code} (not the registry's usual answer)"
    else:
        result.outcome = f"http-{status}"
        result.detail = f"{where}: /v2/ answered HTTP {status}"
    if result.correlation_id:
        result.detail += f" (correlation id {result.correlation_id})"
    _note_issuer(result, settings)


def _shown_location(location: str) -> str:
    """A redirect target as evidence shows it: scheme, host and path only (a portal's query string
    can carry session tokens), printable, bounded."""
    text = "".join(ch for ch in location.strip() if ch.isprintable())[:600]
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if parts.scheme else parts.path
    return shown[:300] + ("?…" if parts.query else "")


def _redirect_scope(host: str, location: str) -> str:
    try:
        target = urlsplit(location).hostname or ""
    except ValueError:
        target = ""
    if not target:
        return "a relative or unreadable location"
    return "same host" if target.lower() == host.lower() else f"another host: {target}"


def _note_issuer(result: ProbeResult, settings: Settings) -> None:
    """A certificate that verified but comes from an unexpected issuer is interception evidence.

    That happens when the machine trusts a corporate inspection CA (``ca_bundle``, the system
    store): every request works here, while clients without that CA fail with x509 errors.
    """
    cert = result.cert
    if cert is None or cert.issued_by_expected(settings.expected_tls_issuers):
        return
    result.findings = [f for f in result.findings if f not in ("probe.reachable", "probe.anonymous")]
    result.findings.append("probe.tls_intercepted")
    result.intercepted = True
    result.detail += (
        f"; but the certificate for {result.host} was issued by '{cert.issuer}', not one of the expected issuers "
        f"({_patterns(settings)}): a TLS-inspecting device re-signs this traffic (trusted here through the "
        "configured CA bundle; clients without that CA fail with x509 errors)"
    )


def _patterns(settings: Settings) -> str:
    listed = list(settings.expected_tls_issuers)
    return ", ".join(listed[:3]) + (f", … {len(listed) - 3} more" if len(listed) > 3 else "") if listed else "none configured"


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _classify_exception(result: ProbeResult, exc: BaseException, settings: Settings) -> None:
    chain = _exception_chain(exc)
    text = " | ".join(str(e) for e in chain)
    lowered = text.lower()
    phases = result.phases
    where = _where(result)
    tunnel_up = any(p.startswith("proxy.start_tls") for p in phases)
    tcp_up = "connection.connect_tcp.complete" in phases
    if result.via_proxy and not tunnel_up:
        _classify_proxy_failure(result, exc, lowered, tcp_up, settings)
        return
    if result.via_proxy:
        result.findings.append("proxy.ok")
    verify_error = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify_error is not None or "certificate_verify_failed" in lowered:
        code = getattr(verify_error, "verify_code", None)
        message = getattr(verify_error, "verify_message", "") or text
        if code == _X509_EXPIRED or "certificate has expired" in lowered:
            result.outcome = "tls-expired"
            result.findings.append("probe.tls_expired")
            result.detail = f"TLS {where}: the certificate for {result.host} has expired ({message})"
        elif code == _X509_NOT_YET_VALID or "not yet valid" in lowered:
            result.outcome = "tls-not-yet-valid"
            result.findings.append("probe.tls_not_yet_valid")
            result.detail = f"TLS {where}: the certificate for {result.host} is not valid yet ({message})"
        elif code == 62 or "hostname mismatch" in lowered or "not valid for" in lowered:
            result.outcome = "tls-name-mismatch"
            result.findings.append("probe.tls_name_mismatch")
            result.detail = f"TLS {where}: the certificate is not valid for {result.host} ({message})"
        else:
            result.outcome = "tls-untrusted"
            result.findings.append("probe.tls_untrusted")
            result.detail = f"TLS {where}: certificate not trusted ({message})"
        return
    if isinstance(exc, httpx.TimeoutException):
        result.outcome = "timeout"
        result.findings.append("probe.timeout")
        if isinstance(exc, httpx.ConnectTimeout):
            step = "TLS handshake" if tcp_up else "TCP connect"
        elif isinstance(exc, httpx.ReadTimeout):
            step = "HTTP answer"
        else:
            step = "request"
        result.detail = f"timeout {where}: no {step} within {settings.probe_timeout:g} s"
        return
    if "reset" in lowered or "errno 104" in lowered or "connection aborted" in lowered:
        result.outcome = "reset"
        result.findings.append("probe.reset")
        result.detail = f"connection reset {where}"
        return
    if isinstance(exc, httpx.RemoteProtocolError) or "disconnected" in lowered or "eof" in lowered:
        result.outcome = "reset"
        result.findings.append("probe.reset")
        result.detail = f"connection closed without an answer {where}"
        return
    if isinstance(exc, httpx.ConnectError) and ("refused" in lowered or "all connection attempts failed" in lowered):
        result.outcome = "refused"
        result.findings.append("probe.refused")
        result.detail = f"connection refused {where}"
        return
    if isinstance(exc, httpx.ConnectError) and "ssl" in lowered:
        result.outcome = "tls-error"
        result.findings.append("probe.tls_untrusted")
        result.detail = f"TLS handshake failed {where}: {_short(text)}"
        return
    result.outcome = "error"
    result.detail = f"{where}: {type(exc).__name__}: {_short(text)}"


def _classify_proxy_failure(
    result: ProbeResult, exc: BaseException, lowered: str, tcp_up: bool, settings: Settings
) -> None:
    proxy = redact_proxy(settings.proxy)
    if isinstance(exc, httpx.ProxyError):
        match = re.match(r"\s*(\d{3})", str(exc))
        code = int(match.group(1)) if match else 0
        result.status = code or None
        if code == 407:
            result.outcome, finding = "proxy-407", "proxy.auth_required"
            result.detail = f"proxy {proxy} requires authentication (407) for CONNECT {result.host}:{result.port}"
        elif code == 403:
            result.outcome, finding = "proxy-403", "proxy.forbidden"
            result.detail = f"proxy {proxy} refused CONNECT {result.host}:{result.port} (403)"
        else:
            result.outcome, finding = f"proxy-{code or 'error'}", "proxy.error"
            result.detail = f"proxy {proxy} answered CONNECT {result.host}:{result.port} with {exc}"
        result.findings.append(finding)
        return
    if not tcp_up and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        result.outcome = "proxy-unreachable"
        result.findings.append("proxy.unreachable")
        result.detail = f"proxy {proxy} is unreachable ({type(exc).__name__})"
        return
    if isinstance(exc, httpx.RemoteProtocolError) or "disconnected" in lowered or "reset" in lowered:
        result.outcome = "proxy-eof"
        result.findings.append("proxy.eof")
        result.detail = (
            f"proxy {proxy} closed the connection during CONNECT {result.host}:{result.port} "
            "(like Go's 'proxyconnect tcp: EOF')"
        )
        return
    if isinstance(exc, httpx.TimeoutException):
        result.outcome = "proxy-silent"
        result.findings.append("proxy.error")
        result.detail = f"proxy {proxy} accepted the connection but never answered CONNECT"
        return
    result.outcome = "proxy-error"
    result.findings.append("proxy.error")
    result.detail = f"proxy {proxy} failed before the tunnel was up: {type(exc).__name__}"


async def _explain_untrusted(result: ProbeResult, settings: Settings, deadline: float | None = None) -> None:
    """After a verification failure, look at the certificate to tell interception from a trust gap.

    Best effort: whatever goes wrong here (the proxy closing the second CONNECT, garbage instead
    of an HTTP head, an undecodable certificate, no time left) leaves the finding of the main
    request untouched. Gets at most ``probe_timeout`` and never runs past ``deadline``.
    """
    budget = settings.probe_timeout
    if deadline is not None:
        budget = min(budget, deadline - asyncio.get_running_loop().time())
    if budget <= 0.05:
        result.detail += "; no time left to read the certificate"
        return
    try:
        der = await asyncio.wait_for(_fetch_unverified_cert(result, settings), budget)
    except (
        OSError,
        TimeoutError,
        ssl.SSLError,
        ValueError,
        ConnectionError,
        EOFError,  # asyncio.IncompleteReadError: the proxy closed the tunnel request
        asyncio.LimitOverrunError,  # an endless answer instead of an HTTP head
    ) as exc:
        log.debug("certificate for %s not fetched: %s", result.host, type(exc).__name__)
        return
    if not der:
        return
    cert = _safe_parse_cert(der, verified=False)
    if cert is None:
        return
    result.cert = cert
    expected = cert.issued_by_expected(settings.expected_tls_issuers)
    if result.outcome == "tls-name-mismatch":
        result.detail += f"; it is issued for {', '.join(cert.san) or cert.subject}"
        return
    if result.outcome in ("tls-expired", "tls-not-yet-valid"):
        now = datetime.now(UTC).isoformat()[:19] + "Z"
        if result.outcome == "tls-expired":
            when = f"expired on {cert.not_after[:19]}Z (valid from {cert.not_before[:19]}Z)"
        else:
            when = f"is not valid before {cert.not_before[:19]}Z (valid until {cert.not_after[:19]}Z)"
        result.detail = (
            f"TLS {_where(result)}: the certificate for {result.host} issued by '{cert.issuer}' {when}; "
            f"now is {now} here: either the endpoint serves a certificate outside its validity or this "
            "machine's clock is wrong"
        )
        if not expected:
            result.findings.append("probe.tls_intercepted")
            result.detail += (
                f"; the issuer is not one of the expected issuers ({_patterns(settings)}): a TLS-inspecting "
                "device may be serving it"
            )
        return
    if not expected:
        result.outcome = "tls-intercepted"
        result.findings = [f for f in result.findings if f != "probe.tls_untrusted"] + ["probe.tls_intercepted"]
        result.detail = (
            f"TLS {_where(result)}: certificate for {result.host} issued by '{cert.issuer}', "
            f"not one of the expected issuers ({_patterns(settings)}): a TLS-inspecting proxy/firewall is "
            "re-signing traffic"
        )
    else:
        result.detail += f"; issuer '{cert.issuer}' is an expected public CA missing from this machine's trust store"


async def _fetch_unverified_cert(result: ProbeResult, settings: Settings) -> bytes | None:
    """Handshake without verification, only to read the certificate; nothing is sent over it."""
    ctx = _noverify_context()
    writer: asyncio.StreamWriter | None = None
    try:
        if result.via_proxy:
            writer = await _open_tunnel(settings, result.host, result.port)
            if writer is None:
                return None
            await writer.start_tls(ctx, server_hostname=result.host)
        else:
            assert result.address is not None
            _, writer = await asyncio.open_connection(result.address, result.port, ssl=ctx, server_hostname=result.host)
        obj = writer.get_extra_info("ssl_object")
        return obj.getpeercert(binary_form=True) if obj else None
    finally:
        if writer is not None:
            await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, TimeoutError, ConnectionError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _open_tunnel(settings: Settings, host: str, port: int) -> asyncio.StreamWriter | None:
    """A raw CONNECT tunnel through ``settings.proxy`` (used only to fetch a certificate).

    ``http://`` proxies are reached over plain TCP (default port 80), ``https://`` proxies over
    TLS verified like the main request (default port 443), so ``Proxy-Authorization`` only ever
    travels the way httpx itself sends it. Other schemes (SOCKS) return None: no tunnel, no
    certificate, and the credentials are never sent.
    """
    proxy_url = settings.proxy or ""
    parts = urlsplit(proxy_url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    default_port = 443 if scheme == "https" else 80
    proxy_port = parts.port or default_port
    if scheme == "https":
        reader, writer = await asyncio.open_connection(
            parts.hostname, proxy_port, ssl=build_ssl_context(settings.ca_bundle), server_hostname=parts.hostname
        )
    else:
        reader, writer = await asyncio.open_connection(parts.hostname, proxy_port)
    try:
        lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
        if parts.username:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            lines.append(f"Proxy-Authorization: Basic {base64.b64encode(creds).decode()}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if head.split(b" ", 2)[1:2] != [b"200"]:
            raise ConnectionError("proxy did not open a tunnel")
    except BaseException:
        await _close(writer)
        raise
    return writer


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- evidence


def to_evidence(result: ProbeResult, settings: Settings, duration_ms: float) -> Evidence:
    """Probe outcome → Evidence (``probe.*`` and ``proxy.*`` findings)."""
    if result.ok:
        status = Status.WARN if result.intercepted else Status.OK
    elif result.outcome.startswith("http-") and "probe.forbidden_other" not in result.findings:
        status = Status.WARN if result.status == 429 or (result.status or 0) < 400 else Status.FAIL
    else:
        status = Status.FAIL
    data: dict[str, Any] = {
        "address": result.address,
        "port": result.port,
        "outcome": result.outcome,
        "http_status": result.status,
        "www_authenticate": result.www_authenticate,
        "error_code": result.error_code,
        "correlation_id": result.correlation_id,
        "client_ip": result.client_ip,
        "phases": result.phases,
        "exception": result.exception,
        "via_proxy": result.via_proxy,
    }
    if result.via_proxy:
        data["proxy"] = redact_proxy(settings.proxy)
    if result.cert is not None:
        data["cert_issuer"] = result.cert.issuer
        data["cert_subject"] = result.cert.subject
        data["cert_san"] = result.cert.san
        data["cert_verified"] = result.cert.verified
        data["cert_not_before"] = result.cert.not_before
        data["cert_not_after"] = result.cert.not_after
        data["cert_expected_issuer"] = result.cert.issued_by_expected(settings.expected_tls_issuers)
    if result.redirect_location:
        data["redirect_location"] = result.redirect_location
    return Evidence(
        "probe",
        result.host,
        settings.vantage_name,
        status,
        result.detail,
        data,
        duration_ms,
        list(result.findings),
    )


def refused_address_evidence(host: str, address: str, reason: str, settings: Settings) -> Evidence:
    return Evidence(
        "probe",
        host,
        settings.vantage_name,
        Status.SKIPPED,
        f"{address}: {reason}",
        {"address": address, "outcome": "unsafe-address"},
        0.0,
        [],
    )


async def check_probe(
    host: str,
    address: str | None,
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    kind: str = "login_server",
    deadline: float | None = None,
    chain: tuple[str, ...] | list[str] = (),
) -> Evidence:
    """Probe one (host, address) pair and return Evidence; refuses unsafe addresses without connecting.

    ``chain`` is the CNAME chain DNS followed to ``address`` (the address policy needs it).
    """
    if address is not None:
        reason = address_refusal(address, settings, chain=chain)
        if reason:
            return refused_address_evidence(host, address, reason, settings)
    started = time.perf_counter()
    result = await probe(host, address, settings, client, kind=kind, deadline=deadline)
    return to_evidence(result, settings, (time.perf_counter() - started) * 1000.0)
