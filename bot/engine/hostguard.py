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
