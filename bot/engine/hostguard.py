"""SSRF guard: decide whether a user-supplied registry name or host may be touched at all.

Live checks resolve and connect to a host that came from a chat message or a command line.
Without a guard, "check 169.254.169.254" or "check myreg.azurecr.io.evil.com" would turn the
bot into a proxy into its own network. So every host goes through :func:`registry_target`
before any DNS query or connection: only a bare ACR name or an FQDN that is an ACR endpoint in
one of the Azure clouds passes, and everything else raises :class:`UnsafeTarget` with a
message that can be shown to the user as-is.

The rules are an allowlist (shape of each label, known suffixes), not a blocklist: IP
literals in any notation, look-alike suffixes, userinfo, ports, paths and IDN tricks all fail
because they do not match the allowed shapes, and explicit checks give them a clearer reason.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

#: DNS suffix of each Azure cloud's registries.
CLOUD_SUFFIXES: dict[str, str] = {
    "azurecr.io": "AzureCloud",
    "azurecr.cn": "AzureChinaCloud",
    "azurecr.us": "AzureUSGovernment",
}
_SUFFIX_BY_CLOUD = {cloud: suffix for suffix, cloud in CLOUD_SUFFIXES.items()}

_NAME_RE = re.compile(r"^[a-z0-9]{5,50}$")
# Login servers can carry a hash suffix: "name-dad4auhga8feekaq.azurecr.io".
_FIRST_LABEL_RE = re.compile(r"^(?P<name>[a-z0-9]{5,50})(?:-(?P<hash>[a-z0-9]{1,32}))?$")
_REGION_RE = re.compile(r"^[a-z][a-z0-9]{1,39}$")
_ALLOWED_CHARS_RE = re.compile(r"^[a-z0-9.\-]+$")
_MAX_NAME = 253
_MAX_LABEL = 63
#: Names that look like registry names but point at the bot's own machine or cloud metadata.
_RESERVED_NAMES = frozenset({"localhost", "localdomain", "metadata", "instancedata", "wpad"})


class UnsafeTarget(ValueError):
    """The value is not something acrcheck will resolve or connect to. ``str()`` is user-facing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RegistryTarget:
    """A registry endpoint that passed the guard.

    ``host`` is the exact endpoint the user named (what DNS and probes use first);
    ``login_server`` is the registry's REST endpoint derived from it.
    """

    name: str  # short registry name, lowercase
    login_server: str
    cloud: str  # "AzureCloud" | "AzureChinaCloud" | "AzureUSGovernment"
    kind: str  # "login_server" | "data_endpoint" | "geo" | "privatelink"
    region: str | None = None
    host: str = ""
    privatelink: bool = False
    hashed: bool = False  # login server carries an auto-generated domain label suffix


def registry_target(value: str) -> RegistryTarget:
    """Validate a registry name or ACR endpoint and return its parts, or raise :class:`UnsafeTarget`."""
    if not isinstance(value, str):
        raise UnsafeTarget("The registry must be given as text.")
    raw = value.strip(" \t\r\n")
    if not raw:
        raise UnsafeTarget("No registry name was given.")
    if len(raw) > 300:
        raise UnsafeTarget("That registry name is far too long to be an Azure Container Registry.")
    if not raw.isascii():
        raise UnsafeTarget(
            "Registry names are plain ASCII; this one contains other characters (look-alike letters?)."
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise UnsafeTarget("Registry names cannot contain spaces or control characters.")
    text = raw.lower()
    if "://" in text:
        if not text.startswith("https://") or "://" in text[len("https://") :]:
            raise UnsafeTarget("Only https:// registry URLs are accepted.")
        text = text[len("https://") :]
    for ending in ("/v2/", "/v2", "/"):
        if text.endswith(ending):
            text = text[: -len(ending)]
            break
    if "@" in text:
        raise UnsafeTarget("User names or passwords in the registry address are not accepted.")
    if "/" in text or "?" in text or "#" in text or "\\" in text:
        raise UnsafeTarget("Give only the registry host name, without a path or query.")
    if text.startswith("[") or ":" in text:
        if _is_ip_literal(text.strip("[]")):
            raise UnsafeTarget("IP addresses are not accepted; give the registry name (e.g. myregistry).")
        raise UnsafeTarget("Ports are not accepted; registries are always checked on HTTPS 443.")
    if text.endswith("."):
        text = text[:-1]  # one absolute-name dot is harmless
    if _is_ip_literal(text):
        raise UnsafeTarget("IP addresses are not accepted; give the registry name (e.g. myregistry).")
    if not _ALLOWED_CHARS_RE.match(text):
        raise UnsafeTarget("That is not a valid registry name: only letters, digits, dots and dashes.")
    if len(text) > _MAX_NAME:
        raise UnsafeTarget("That host name is longer than DNS allows.")
    labels = text.split(".")
    if any(not label or len(label) > _MAX_LABEL for label in labels):
        raise UnsafeTarget("That host name has an empty or over-long label.")
    if any(label.startswith("xn--") for label in labels):
        raise UnsafeTarget("Internationalised (punycode) names are not Azure registry names.")
    if len(labels) == 1:
        return _bare_name(labels[0])
    return _fqdn(text, labels)


def is_azure_registry_host(host: str) -> bool:
    """True when ``host`` is a full ACR endpoint FQDN that the guard accepts (bare names are not hosts)."""
    try:
        target = registry_target(host)
    except UnsafeTarget:
        return False
    return "." in host.strip().rstrip(".") and target.host == host.strip().lower().rstrip(".")


def login_server_for(name: str, cloud: str = "AzureCloud") -> str:
    """The classic login server of a registry name in a cloud."""
    return f"{name}.{_SUFFIX_BY_CLOUD[cloud]}"


def _bare_name(label: str) -> RegistryTarget:
    if label in _RESERVED_NAMES:
        raise UnsafeTarget(f"'{label}' is not an Azure Container Registry name.")
    if not _NAME_RE.match(label):
        raise UnsafeTarget(
            "A registry name is 5 to 50 letters or digits (no dashes or dots), e.g. myregistry, "
            "or a full login server such as myregistry.azurecr.io."
        )
    login = f"{label}.azurecr.io"
    return RegistryTarget(name=label, login_server=login, cloud="AzureCloud", kind="login_server", host=login)


def _fqdn(text: str, labels: list[str]) -> RegistryTarget:
    suffix = ".".join(labels[-2:])
    cloud = CLOUD_SUFFIXES.get(suffix)
    if cloud is None:
        raise UnsafeTarget(
            "Only Azure Container Registry hosts are checked (<name>.azurecr.io, .azurecr.cn or .azurecr.us)."
        )
    inner = labels[:-2]
    if not inner:
        raise UnsafeTarget("'azurecr' alone is not a registry; give <name>.azurecr.io.")
    match = _FIRST_LABEL_RE.match(inner[0])
    if match is None:
        raise UnsafeTarget(
            "The registry part of the host must be 5 to 50 letters or digits, e.g. myregistry.azurecr.io."
        )
    name = match["name"]
    if name in _RESERVED_NAMES:
        raise UnsafeTarget(f"'{name}' is not an Azure Container Registry name.")
    hashed = match["hash"] is not None
    rest = inner[1:]

    def make(kind: str, region: str | None = None, privatelink: bool = False) -> RegistryTarget:
        login = f"{inner[0]}.{suffix}"
        return RegistryTarget(
            name=name,
            login_server=login,
            cloud=cloud,
            kind=kind,
            region=region,
            host=text,
            privatelink=privatelink,
            hashed=hashed,
        )

    if not rest:
        return make("login_server")
    if rest == ["privatelink"]:
        return make("privatelink", privatelink=True)
    if len(rest) == 2 and rest[1] in ("data", "geo") and _REGION_RE.match(rest[0]):
        return make("data_endpoint" if rest[1] == "data" else "geo", region=rest[0])
    if len(rest) == 3 and rest[1:] == ["data", "privatelink"] and _REGION_RE.match(rest[0]):
        return make("data_endpoint", region=rest[0], privatelink=True)
    raise UnsafeTarget(
        "That host is not an Azure Container Registry endpoint "
        "(<name>.azurecr.io, <name>.<region>.data.azurecr.io, <name>.<region>.geo.azurecr.io "
        "or <name>.privatelink.azurecr.io)."
    )


def _is_ip_literal(text: str) -> bool:
    """True for IPv4/IPv6 in any notation a resolver or libc would accept (decimal, hex, octal, short)."""
    candidate = text.split("%", 1)[0]
    try:
        ipaddress.ip_address(candidate)
        return True
    except ValueError:
        pass
    parts = candidate.split(".")
    if not 1 <= len(parts) <= 4:
        return False
    for part in parts:
        if re.fullmatch(r"0x[0-9a-f]*", part) or re.fullmatch(r"[0-9]+", part):
            continue
        return False
    return True


# ============================================================================ address policy


@dataclass(frozen=True, slots=True)
class PlatformAddress:
    """A metadata or platform-internal address that a registry name must never resolve to."""

    address: str
    owner: str  # who serves it (documented in docs/address-policy.md)


#: Metadata and platform-internal addresses, refused whatever range they fall in. The same table
#: is in docs/address-policy.md (a test keeps them equal).
METADATA_ADDRESSES: tuple[PlatformAddress, ...] = (
    PlatformAddress("168.63.129.16", "Azure WireServer / platform DNS, health probes, VM agent"),
    PlatformAddress("169.254.169.254", "Azure IMDS; AWS, GCP, Oracle, OpenStack and others' metadata service"),
    PlatformAddress("169.254.169.253", "AWS VPC DNS resolver (Route 53 Resolver)"),
    PlatformAddress("169.254.169.123", "AWS Time Sync Service"),
    PlatformAddress("169.254.170.2", "AWS ECS task metadata and credentials"),
    PlatformAddress("169.254.170.23", "AWS EKS Pod Identity agent"),
    PlatformAddress("169.254.0.23", "Tencent Cloud metadata"),
    PlatformAddress("fd00:ec2::254", "AWS IMDS over IPv6"),
    PlatformAddress("fd00:ec2::253", "AWS VPC DNS resolver over IPv6"),
    PlatformAddress("fd00:ec2::123", "AWS Time Sync Service over IPv6"),
    PlatformAddress("fd00:ec2::23", "AWS EKS Pod Identity agent over IPv6"),
    PlatformAddress("fd20:ce::254", "Google Cloud metadata server over IPv6"),
    PlatformAddress("100.100.100.200", "Alibaba Cloud metadata"),
    PlatformAddress("192.0.0.192", "Oracle Cloud (OCI) metadata"),
)
_METADATA = {ipaddress.ip_address(entry.address): entry for entry in METADATA_ADDRESSES}

#: Ranges a private endpoint can use: RFC 1918, shared address space (RFC 6598) and IPv6 ULA.
PRIVATE_ENDPOINT_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIXTOFOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_PRIVATELINK_RE = re.compile(
    r"^[a-z0-9-]+(?:\.[a-z][a-z0-9]{1,39}\.data)?\.privatelink\.(?:" + "|".join(re.escape(s) for s in CLOUD_SUFFIXES) + r")$"
)


def is_privatelink_name(name: str) -> bool:
    """``<reg>.privatelink.<suffix>`` or ``<reg>.<region>.data.privatelink.<suffix>`` of an Azure cloud."""
    return _PRIVATELINK_RE.match(name.lower().rstrip(".")) is not None


def address_refusal(address: str, *, chain: tuple[str, ...] | list[str] = (), loopback_resolver: bool = False) -> str | None:
    """Why a DNS answer for a registry name must not be connected to, or None when it may be.

    The policy (docs/address-policy.md), applied to every address a resolver returns:

    1. Metadata and platform-internal addresses (:data:`METADATA_ADDRESSES`) are refused in any
       form: plain, IPv4-mapped, NAT64, 6to4 or IPv4-compatible.
    2. Link-local, unspecified, multicast, broadcast, reserved and documentation addresses are
       refused, and so are 6to4 and Teredo tunnel addresses (no registry front end uses them).
    3. Loopback is probed only when every configured resolver is itself on loopback
       (``loopback_resolver``: a local resolver the operator runs, or a test fake).
    4. Private and shared ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) are probed
       only when the name reached them through a ``privatelink`` CNAME of an Azure registry
       (``chain``): that is what a registry's private endpoint looks like. A private address
       without it is not this registry's endpoint (rebinding, or a hand-made record) and is reported.
    5. Public (global) addresses are probed.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = ip.ipv4_mapped
        if embedded is None and ip in _NAT64[0]:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip in _SIXTOFOUR:
            embedded = ip.sixtofour
        if embedded is None and int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d (IPv4-compatible)
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_refusal(str(embedded), chain=chain, loopback_resolver=loopback_resolver)
            if inner and str(embedded) in inner:
                return inner.replace(str(embedded), f"{address} (embeds {embedded})", 1)
            if ip in _SIXTOFOUR or int(ip) >> 32 == 0:
                return f"DNS returned {address}, a 6to4/IPv4-compatible tunnel address; not probed"
            return inner
        if ip in _NAT64[1]:
            return f"DNS returned {address}, a local-use NAT64 address; not probed"
        if ip in _TEREDO:
            return f"DNS returned {address}, a Teredo tunnel address; not probed"
    entry = _METADATA.get(ip)
    if entry is not None:
        return (
            f"DNS returned {address} ({entry.owner}): a metadata/platform-internal address, never probed "
            "(DNS rebinding or a hostile resolver)"
        )
    if ip.is_loopback:
        if loopback_resolver:
            return None
        return f"DNS returned {address}, a loopback address, for a registry name; not probed"
    if ip.is_link_local:
        return f"DNS returned {address}, a link-local address (metadata services live there); not probed"
    if any(ip in net for net in PRIVATE_ENDPOINT_NETWORKS):
        if any(is_privatelink_name(name) for name in chain):
            return None
        return (
            f"DNS returned {address}, a private address, without a privatelink CNAME: not a private endpoint "
            "of this registry (possible DNS rebinding); not probed"
        )
    if ip.is_global and not ip.is_multicast:
        return None
    return f"DNS returned {address}, a reserved/special-purpose address; not probed"
