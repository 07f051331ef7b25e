"""What kind of host a name is: ACR endpoint, another registry, a data path, or noise.

Kept apart from extraction because the SSRF guard, the extractor and the renderers all
need the same answers, and because the answers depend only on the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACR_SUFFIXES = {"azurecr.io": "AzureCloud", "azurecr.cn": "AzureChinaCloud", "azurecr.us": "AzureUSGovernment"}

_ACR = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9-]{0,80})"
    r"(?:\.(?P<region>[a-z0-9]{2,30})\.(?P<sub>data|geo))?"
    r"(?P<pl>\.privatelink)?"
    r"\.(?P<suffix>azurecr\.(?:io|cn|us))$"
)
_DATA_PRIVATELINK = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9-]{0,80})\.(?P<region>[a-z0-9]{2,30})\.data\.privatelink\.azurecr\.(?:io|cn|us)$"
)
_BLOB = re.compile(r"\.blob\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$")

#: Public registries whose certificates are publicly trusted and whose names always resolve.
PUBLIC_REGISTRIES = (
    "docker.io",
    "docker.com",
    "mcr.microsoft.com",
    "gcr.io",
    "ghcr.io",
    "quay.io",
    "ecr.aws",
    "registry.k8s.io",
    "nvcr.io",
    "registry.gitlab.com",
    "azk8s.cn",
    "icr.io",
    "ocir.io",
    "registry.digitalocean.com",
    "cr.yandex",
    "cr.aliyuncs.com",
    "ccr.ccs.tencentyun.com",
    "tencentcloudcr.com",
    "registry.ollama.ai",  # Ollama's model registry speaks the same /v2/ API
    "registry.baidubce.com",
    "hub.baidubce.com",
    "registry.redhat.io",
    "registry.access.redhat.com",
)
#: Public cloud registries named per region under a domain that also serves other things: Amazon
#: ECR (``<account>.dkr.ecr.<region>.amazonaws.com``, its ``api.ecr`` and ECR Public hosts; STS, SSM,
#: EC2 or EKS endpoints under amazonaws.com are not registries), Google Artifact Registry's Docker
#: hosts (``<region>-docker.pkg.dev``; other formats share pkg.dev), Alibaba Cloud
#: ``registry[-vpc|-intl].<region>.aliyuncs.com`` and Huawei ``swr.<region>.myhuaweicloud.com``.
_REGIONAL_PUBLIC = re.compile(
    r"^(?:[^.]{1,64}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]{2,40}\.amazonaws\.com(?:\.cn)?"
    r"|(?:api\.)?ecr(?:-public)?\.[a-z0-9-]{2,40}\.amazonaws\.com(?:\.cn)?"
    r"|[a-z0-9-]{2,40}-docker\.pkg\.dev"
    r"|registry(?:-vpc|-intl)?\.[a-z0-9-]{2,40}\.aliyuncs\.com|swr\.[a-z0-9-]{2,40}\.myhuaweicloud\.com)$"
)
#: ECR serves layers from its regional S3 buckets (the data endpoint of ECR).
_REGIONAL_DATA = re.compile(r"^prod-[a-z0-9-]{2,40}-starport-layer-bucket\.s3[.-][a-z0-9.-]{0,40}amazonaws\.com$")
#: Docker's web, docs and package hosts are not its registry (apt/yum fetch from download.docker.com).
_NOT_REGISTRY = frozenset(
    {
        "download.docker.com",
        "docs.docker.com",
        "desktop.docker.com",
        "forums.docker.com",
        "www.docker.com",
        "support.docker.com",
        "status.docker.com",
    }
)
#: Hosts that serve image layers for public registries (the "data endpoint" of those registries).
DATA_PATH_SUFFIXES = (
    "cloudflare.docker.com",
    "cloudfront.net",
    "data.mcr.microsoft.com",
    "storage.googleapis.com",
    "r2.cloudflarestorage.com",
    "s3.amazonaws.com",
    "blob.core.windows.net",
    "pkg-containers.githubusercontent.com",
)
#: The same lists as a set and dotted suffixes: one C-level test instead of a loop per name.
_DATA_PATH_SET, _DATA_PATH_DOTTED = frozenset(DATA_PATH_SUFFIXES), tuple("." + s for s in DATA_PATH_SUFFIXES)
_PUBLIC_SET, _PUBLIC_DOTTED = frozenset(PUBLIC_REGISTRIES), tuple("." + s for s in PUBLIC_REGISTRIES)
_PRIVATE_TLDS = (".local", ".lan", ".internal", ".corp", ".home", ".testing", ".test", ".intra", ".localdomain")


@dataclass(frozen=True, slots=True)
class HostInfo:
    host: str
    kind: str  # login_server | data_endpoint | geo | privatelink | blob | data_cdn | public_registry | malformed | lookalike | public_lookalike | other
    registry: str | None = None
    cloud: str | None = None
    region: str | None = None


def _edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance, stopping early once it exceeds ``limit`` (names are short)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


#: Public registries whose misspellings people paste (``ghrc.io``, ``dokcer.io``, ``qauy.io``).
_WELL_KNOWN = ("ghcr.io", "docker.io", "quay.io", "gcr.io", "nvcr.io", "mcr.microsoft.com", "registry.k8s.io")


def _one_slip(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with one typing slip: a swapped pair, one letter wrong, missing or extra."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


#: An Amazon ECR host and its region: ``<account>.dkr.ecr.<region>.amazonaws.com[.cn]``, its API host.
_ECR_HOST = re.compile(r"^(?P<head>.{1,80}?\becr(?:-fips)?\.)(?P<region>[a-z0-9-]{2,40})\.amazonaws\.com(?:\.cn)?$")
#: An availability zone (``us-west-1a``), which is not a region.
_AVAILABILITY_ZONE = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]")


def ecr_misnamed(host: str) -> str | None:
    """The ECR name ``host`` was meant to be when its suffix or region cannot exist, if so.

    China's regions live under ``amazonaws.com.cn`` (and only they do), and an availability zone
    (``us-west-1a``) used as the region names no endpoint: the lookup fails with "no such host",
    as a misspelt Azure suffix does.
    """
    m = _ECR_HOST.match(host)
    if m is None:
        return None
    region = m.group("region")
    if _AVAILABILITY_ZONE.fullmatch(region):
        region = region[:-1]
    china = region.startswith("cn-")
    intended = f"{m.group('head')}{region}.amazonaws.com{'.cn' if china else ''}"
    return intended if intended != host else None


def public_lookalike(host: str) -> str | None:
    """The well-known public registry that ``host`` misspells (same top-level domain), if any.

    Compared on the registrable part (``registry-1.dokcer.io`` -> ``dokcer.io``); names of three
    letters or fewer before the TLD (``gcr``) only match a swapped pair, which keeps ``acr.io`` or
    ``ocr.io`` from passing for typos.
    """
    if host in _WELL_KNOWN:
        return None
    labels = host.split(".")
    for known in _WELL_KNOWN:
        tail = known.count(".") + 1
        if len(labels) < tail or labels[-1] != known.rsplit(".", 1)[1]:
            continue
        candidate = ".".join(labels[-tail:])
        if not _one_slip(candidate, known):
            continue
        if len(known.split(".")[0]) <= 3 and (len(candidate) != len(known) or sorted(candidate) != sorted(known)):
            continue
        return known
    return None


#: Azure registries that Microsoft runs behind a public registry: MCR's token realm and storage are
#: served from ``mcrprod.azurecr.io``, a registry no user owns, so no ``az acr`` command applies.
_PUBLIC_ACR_BACKENDS = frozenset({"mcrprod"})


def names_registry(first: str) -> bool:
    """Whether the part of an image reference before its first ``/`` is a registry host rather
    than a Docker Hub namespace: Docker's own rule (a dot, a port or ``localhost``), so
    ``harbor:5000/app`` and ``ghcr.io/app`` name a registry and ``library/nginx`` does not."""
    return "." in first or ":" in first or first == "localhost"


def classify_host(host: str) -> HostInfo:
    """Say what a (lowercase, port-less) host name is."""
    host = host.lower().rstrip(".")
    if host.count("azurecr.") >= 2:
        return _misnamed_acr(host, "malformed")
    m = _DATA_PRIVATELINK.match(host)
    if m:
        return HostInfo(host, "privatelink", m.group("name"), ACR_SUFFIXES[host[-10:]], m.group("region"))
    m = _ACR.match(host)
    if m:
        cloud = ACR_SUFFIXES[m.group("suffix")]
        name = m.group("name")
        if name in _PUBLIC_ACR_BACKENDS:
            return HostInfo(host, "public_registry")
        if m.group("pl"):
            return HostInfo(host, "privatelink", name, cloud, m.group("region"))
        if m.group("sub") == "data":
            return HostInfo(host, "data_endpoint", name, cloud, m.group("region"))
        if m.group("sub") == "geo":
            return HostInfo(host, "geo", name, cloud, m.group("region"))
        if "." in name:
            return _misnamed_acr(host, "malformed", cloud)
        return HostInfo(host, "login_server", name, cloud)
    if _BLOB.search(host):
        return HostInfo(host, "blob")
    if host in _DATA_PATH_SET or host.endswith(_DATA_PATH_DOTTED) or _REGIONAL_DATA.match(host):
        return HostInfo(host, "data_cdn")
    if host in _NOT_REGISTRY:
        return HostInfo(host, "other")
    intended = ecr_misnamed(host)
    if intended is not None:
        return HostInfo(host, "public_lookalike", intended)
    if host in _PUBLIC_SET or host.endswith(_PUBLIC_DOTTED) or _REGIONAL_PUBLIC.match(host):
        return HostInfo(host, "public_registry")
    intended = public_lookalike(host)
    if intended is not None:
        return HostInfo(host, "public_lookalike", intended)
    labels = host.split(".")
    if len(labels) >= 2:
        tail = ".".join(labels[-2:])
        near = tail not in ACR_SUFFIXES and ("az" in tail or "cr" in tail)  # a real suffix is no typo of another
        for suffix in ACR_SUFFIXES if near else ():
            if _edit_distance(tail, suffix, 2) <= 2:
                return _misnamed_acr(host, "lookalike", ACR_SUFFIXES[suffix])
        if "azurecr" in host or "azureacr" in host:
            return _misnamed_acr(host, "lookalike")
    return HostInfo(host, "other")


#: Azure's rule for a registry name: 5 to 50 letters and digits.
_ACR_NAME = re.compile(r"[a-z0-9]{5,50}")


def _misnamed_acr(host: str, kind: str, cloud: str | None = None) -> HostInfo:
    """A malformed or misspelt ACR host, with the registry name it most likely stands for (its
    first label, when that is a valid registry name) and the cloud its suffix names, so a reply
    can offer the corrected login server (``myreg.azurecr.com`` -> ``myreg.azurecr.io``)."""
    first = host.split(".", 1)[0]
    if cloud is None:
        cloud = next((c for suffix, c in ACR_SUFFIXES.items() if suffix in host), "AzureCloud")
    if _ACR_NAME.fullmatch(first) is None or first in ("azurecr", "azureacr"):
        return HostInfo(host, kind, cloud=cloud)
    return HostInfo(host, kind, first, cloud)


def intended_login_server(registry: str, cloud: str | None) -> str:
    """The login server of registry ``registry`` in ``cloud`` (the public cloud when unknown)."""
    suffix = next((s for s, c in ACR_SUFFIXES.items() if c == cloud), "azurecr.io")
    return f"{registry}.{suffix}"


#: Host kinds of an Azure registry's names (a malformed or look-alike ACR name is still about ACR).
_ACR_KINDS = frozenset({"login_server", "data_endpoint", "privatelink", "geo", "malformed", "lookalike"})
_PUBLIC_KINDS = frozenset({"public_registry", "data_cdn", "blob"})


def registry_class_of(kind: str) -> str:
    """The class of the failing registry from its host's kind: ``acr``, ``public`` or ``private``
    (self-hosted: an intranet name, an IP, a custom port, or anything unknown)."""
    if kind in _ACR_KINDS:
        return "acr"
    return "public" if kind in _PUBLIC_KINDS else "private"


def is_private_registry_name(host: str) -> bool:
    """A registry name that is clearly self-hosted (intranet TLD, single label, IP, custom port)."""
    bare = host.split(":")[0]
    if "." not in bare:
        return True
    return bare.endswith(_PRIVATE_TLDS) or bool(re.fullmatch(r"[\d.]+", bare))
