"""Read facts out of a pasted error: hosts, IPs, status codes, tool, codes, signals.

Order matters for safety: the text is normalised, then redacted, and only the redacted
text is examined further, so no secret can leak into facts, evidence or logs. Every
regex here has bounded quantifiers and runs on lines capped by ``normalize``; the
signal vocabulary comes from the knowledge base, not from this module.

Speed: each regex runs only when a cheap substring test says it can match, and patterns that
would need ``re.IGNORECASE`` run case-sensitively on the lowercased text instead (``lower``,
same length as ``text``, so a match's span picks the original spelling out of ``text``):
CPython's regex engine skips ahead on a literal prefix only when matching case-sensitively.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from bot.engine.hosts import classify_host, intended_login_server, names_registry, registry_class_of
from bot.engine.image_ref import image_reference
from bot.engine.knowledge import KnowledgeBase, default_knowledge
from bot.engine.models import Facts, HostFact, IpFact
from bot.engine.normalize import FOCUS_THRESHOLD, MAX_INPUT_CHARS, normalize, unwrap
from bot.engine.occurrences import occurrences
from bot.engine.redact import lower_same_length, redact_found
from bot.engine.redact import secret_kinds as all_secret_kinds

_HOST = re.compile(r"(?<![\w.@-])((?:[A-Za-z0-9_-]{1,63}+\.){1,12}[A-Za-z]{2,24}+)(?::(\d{1,5}))?(?![\w-])")
#: A dotted quad; each number is checked to be at most 255 by ``_valid_ipv4``. Starting on a digit
#: class (the lookbehind stands for "not inside a word") lets the engine skip to digits.
_IPV4 = re.compile(r"([0-9](?<![\w.][0-9])[0-9]{0,2}(?:\.[0-9]{1,3}){3})(?::(\d{1,5}))?(?![\w.]|\.\d)")
# The patterns below run on the lowercased text (see the module docstring).
_CLIENT_IP = re.compile(r"client with ip\s{0,3}['\"]?\s{0,3}([0-9a-f.:]{3,45})")
_LOOKUP = re.compile(
    r"lookup\s{1,3}([^\s:'\"]{1,253}+)(?:\s{1,3}on\s{1,3}\[?([0-9a-f.:]{3,45}?)\]?(?::(\d{1,5}))?)?:\s",
)
_DNS_UDP = re.compile(r"(?:read|write|dial) udp\s{1,3}[^\s>]{0,60}->\[?([0-9a-f.:]{3,45}?)\]?:53\b")
_DIAL = re.compile(
    r"dial tcp\s{1,3}(?:\[([0-9a-f:.%]{2,45})\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})"
)
#: A dial target redacted to a name that says it is private (``dial tcp <acr-private-ip>:443``,
#: ``<private IP address>``): documentation and careful posters write the failure this way.
_DIAL_PRIVATE_PLACEHOLDER = re.compile(r"dial tcp\s{1,3}\\?<[^<>\n]{0,40}private[^<>\n]{0,40}\\?>:\d{1,5}")
_CONNECT = re.compile(r"(?:connect|ETIMEDOUT|ECONNREFUSED|ECONNRESET)\s{1,3}([\d.]{7,15}):(\d{1,5})")  # on text
_CONNECT_WORDS = ("connect", "ETIMEDOUT", "ECONNRE")
_PROXYCONNECT = re.compile(
    r"proxyconnect tcp:\s{0,3}dial tcp:?\s{1,3}(?:lookup\s{1,3})?"
    r"(\[[0-9a-f:.%]{2,45}\]|[a-z0-9][a-z0-9.-]{0,252})(?::(\d{1,5}))?",
)
_PROXY_VAR = re.compile(r"\b(?:https?_proxy|proxy)\s{0,3}[=:]\s{0,3}[\"']?(https?://[^\s\"']{1,253})")
_STATUS = (
    re.compile(  # a digit first (the lookbehind stands for \b), so the engine skips to digits
        r"([1-5])(?<![\w][1-5])(\d\d)\s{1,3}(?:forbidden|unauthorized|not found|too many requests|service unavailable|"
        r"bad gateway|internal server error|proxy authentication required|bad request|gateway time-?out|conflict|"
        r"method not allowed|request timeout)\b",
    ),
    re.compile(
        r"\b(?:status(?: code)?|response code|response|unexpected status|error status|http status|"
        r"status code=|http/\d(?:\.\d)?)\s{0,3}[:=]?\s{0,3}\[?([1-5]\d\d)\b",
    ),
)
#: Words one of which a _STATUS[0] match needs (a cheap test before the regex runs).
_STATUS_WORDS = (
    "forbidden", "unauthorized", "not found", "too many", "unavailable", "bad gateway", "internal server",
    "proxy authentication", "bad request", "gateway time", "conflict", "not allowed", "request timeout",
)  # fmt: skip
_CHECKHEALTH = re.compile(
    r"\b(CONNECTIVITY_[A-Z_]{3,40}|DOCKER_[A-Z]{3,12}_ERROR|HELM_[A-Z]{3,12}_ERROR|NOTARY_[A-Z]{3,12}_ERROR|"
    r"LOGIN_SERVER_ERROR|CMK_ERROR|UNEXPECTED_ERROR)\b"
)
_CHECKHEALTH_OK = re.compile(
    r"^(?:DNS lookup to|Challenge endpoint|Fetch (?:refresh|access) token|Docker pull of)[^\n]{0,300} : OK\s*$",
    re.MULTILINE,
)
_CANIPULL = re.compile(
    r"(Checking host name resolution|Validating managed identity existance|Validating managed identity existence|"
    r"Validating service principal credential|Validating image pull permission)[^:\n]{0,120}:\s{0,3}(SUCCEEDED|FAILED)".lower(),
)
_CANIPULL_OK = re.compile(r"your cluster can pull images from\s{1,3}(\S{1,253})")
_CANIPULL_LOCATION = re.compile(r"acr location:\s{0,3}([a-z0-9]{3,30})")
_CANIPULL_EXCHANGE = re.compile(r"token exchange endpoint returned error status:\s{0,3}(\d{3})")
_CORRELATION = re.compile(
    r"(?:correlation[ _-]?(?:request[ _-]?)?id|x-ms-correlation-request-id|request[ _-]?id)[\"']?\s{0,3}[:=]\s{0,3}[\"']?"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
)
_K8S_NODE = re.compile(r"\b(aks-[a-z0-9]{1,30}-\d{3,12}-vmss[0-9a-z]{6})\b")
#: ``-n`` is a namespace only on a kubectl/helm/oc command line (``echo -n``, ``az … -n`` are not).
_K8S_NAMESPACE = re.compile(
    r"(?:namespace[=: ]{1,3}|--namespace[= ]|\b(?:kubectl|helm|oc|k)[ \t][^\n|;&]{0,200}?[ \t]-n[ \t]{1,3})"
    r"\"?([a-z0-9][a-z0-9-]{0,62})\b"
)
_K8S_POD = re.compile(r"\bpod[s]?/([a-z0-9][a-z0-9.-]{0,252})")
_K8S_CONTEXT = re.compile(r"\b(?:current-context|context)[=: ]{1,3}\"?([\w@.:/-]{1,120})")
_REGION_HINT = re.compile(r"\b(?:region|location)\b[\s:='\"]{1,4}([a-z]{4,20}\d?)\b")
_REGISTRY_POSITION = (
    re.compile(r"https?://([^/\s\"'<>]{1,253})/v[12]/"),
    re.compile(
        r"\b(?:docker|podman|nerdctl|buildah|crane|oras|helm registry)\s{1,3}login\s{1,3}(?:-{1,2}\S{1,40}\s{1,3}){0,4}([^\s/\"'`]{1,253})",
    ),
    re.compile(
        # on the command's own line: the next line's first word is no argument
        r"\b(?:docker|podman|nerdctl|buildah|crane|oras|ctr|crictl)[ \t]{1,3}(?:image[ \t]{1,3})?(?:pull|push|run)[ \t]{1,3}(?:-{1,2}[\w-]{1,40}(?:[ =][^\s-]\S{0,60})?[ \t]{1,3}){0,8}([^\s\"'`]{1,400})",
    ),
    re.compile(
        r"pinging (?:container|docker) registry(?: returned:)?\s{1,3}(?:get\s{1,3}\"?https?://)?([^\s/:\"']{1,253}(?::\d{1,5})?)",
    ),
    re.compile(
        # a host with a domain, or a registry at an IPv4 address and port (10.0.4.7:5000/app)
        r"(?:image|pull|push|repository|pulling|manifest for|via tag):?\s{1,3}[\[\"']?"
        r"((?:[a-z0-9][a-z0-9.-]{0,252}\.[a-z]{2,24}|\d{1,3}(?:\.\d{1,3}){3}(?=:\d))(?::\d{1,5})?)/[\w./-]{1,200}",
    ),
    # docker's "pull access denied for <reference>" and docker run's "Unable to find image '<reference>'
    # locally" (the pull that follows is of that image): a reference without a host is Docker Hub's
    re.compile(r"(?:pull access denied for |unable to find image ')([a-z0-9][\w./:-]{0,400})"),
    # the kubelet's quoted reference (Failed to pull image "x", Back-off pulling image "x"), with or
    # without a host: the registry of an event that names no host with a domain
    re.compile(r"pull(?:ing)? image \\?\"([a-z0-9][\w./:@-]{0,400})\\?\""),
)
#: Positions that capture a URL's host (a /v2/ URL, docker's "pinging registry ... Get https://X"):
#: there a name without a dot is an intranet host (``https://harbor/v2/``), never Docker Hub.
_POSITION_IS_HOST = (True, False, False, True, False, False, False)
_TOOLS = ("docker", "podman", "nerdctl", "buildah", "crane", "oras", "helm registry", "ctr", "crictl")
#: Cheap substring tests, each group of which must pass before each _REGISTRY_POSITION regex runs.
_REGISTRY_GATES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("/v2/", "/v1/"),),
    (("login",), _TOOLS),
    (("pull", "push", "run"), _TOOLS),
    (("pinging",),),
    (("image", "pull", "push", "repository", "manifest for", "via tag"),),
    (("pull access denied for", "unable to find image"),),
    (('pulling image "', 'pull image "', 'pulling image \\"', 'pull image \\"'),),
)
_ACR_NAME_ARG = (
    re.compile(
        r"\baz acr\s{1,3}[a-z-]{2,30}(?:\s{1,3}[a-z-]{2,30})?\s{1,3}(?:[^\n]{0,200}?\s)?(?:-n|--name|-r|--registry|--registry-name)[ =]([A-Za-z0-9]{5,50})\b"
    ),
    re.compile(r"\bregistry\s{1,3}['\"‘’]([a-z0-9]{5,50})['\"‘’]"),  # on the lowercased text
    re.compile(r"(?<![\w-])(?:--acr|--attach-acr)[ =]([A-Za-z0-9]{5,50})\b"),  # "\b--" never matched after a space
)
#: Where each _ACR_NAME_ARG pattern starts (in the text, the lowercased text, the text): it is
#: matched at the first ``_ACR_NAME_TRIES`` occurrences only, so a paste of thousands of
#: ``az acr login -n`` without a name costs a bounded number of tries, not a scan from each.
_ACR_NAME_GATES = ("az acr", "registry", "--a")
#: Azure's words: "registry 'contosoreg'" names an ACR registry only in a paste that has them
#: (az CLI and ARM messages), not in "our local registry 'harbor'".
_AZURE_WORDS = re.compile(r"\baz\s|azure|\bacr\b|azurecr|microsoft\.containerregistry")
_ACR_NAME_TRIES = 50
_AZURE_REGIONS = frozenset(
    [
        "eastus",
        "eastus2",
        "westus",
        "westus2",
        "westus3",
        "centralus",
        "northcentralus",
        "southcentralus",
        "westcentralus",
        "canadacentral",
        "canadaeast",
        "brazilsouth",
        "northeurope",
        "westeurope",
        "uksouth",
        "ukwest",
        "francecentral",
        "francesouth",
        "germanywestcentral",
        "germanynorth",
        "norwayeast",
        "norwaywest",
        "switzerlandnorth",
        "switzerlandwest",
        "swedencentral",
        "polandcentral",
        "italynorth",
        "spaincentral",
        "eastasia",
        "southeastasia",
        "japaneast",
        "japanwest",
        "australiaeast",
        "australiasoutheast",
        "australiacentral",
        "koreacentral",
        "koreasouth",
        "centralindia",
        "southindia",
        "westindia",
        "uaenorth",
        "uaecentral",
        "southafricanorth",
        "qatarcentral",
        "israelcentral",
        "mexicocentral",
        "newzealandnorth",
        "chinaeast",
        "chinaeast2",
        "chinaeast3",
        "chinanorth",
        "chinanorth2",
        "chinanorth3",
        "usgovvirginia",
        "usgovarizona",
        "usgovtexas",
    ]
)
_IGNORED_HOST_SUFFIXES = ("aka.ms", "learn.microsoft.com", "docs.microsoft.com", "docker.com/increase-rate-limit")
#: Names that end like a file are not hosts (``main.go``, ``values.yaml``).
_FILE_SUFFIXES = (
    ".py", ".go", ".js", ".ts", ".json", ".yaml", ".yml", ".txt", ".log", ".conf", ".sh", ".md", ".cs", ".java",
    ".rb", ".exe", ".dll", ".so", ".tar", ".gz", ".zip", ".html", ".xml", ".crt", ".pem", ".key",
)  # fmt: skip


_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


@dataclass(slots=True)
class Extraction:
    """Facts plus the derived views the classifier's rules test."""

    facts: Facts
    text: str  # normalised, redacted
    derived: dict[str, set[str]] = field(default_factory=dict)
    registry_context: bool = False
    #: The secret values masked in the paste: never output, only used to mask them again
    #: wherever they reappear (``bot.engine.scrub``).
    secret_values: list[str] = field(default_factory=list, repr=False)


def _valid_ipv4(address: str) -> bool:
    """Each number at most 255 and, when it has three digits, no leading zero (as the pattern used to say)."""
    return all(int(part) <= 255 and not (len(part) == 3 and part[0] == "0") for part in address.split("."))


def _ip_scope(address: str) -> str:
    """Where an address routes. Dotted IPv4 is read with integer tests (``ipaddress`` is slow on the hot path)."""
    parts = address.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0") for p in parts):
        a, b, c, d = (int(p) for p in parts)
        if max(a, b, c, d) > 255:
            return "other"
        if a == 127:
            return "loopback"
        if a == 169 and b == 254:
            return "link-local"
        if a == 10 or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168) or (a == 100 and 64 <= b <= 127):
            return "private"
        if a >= 224 or (a, b, c, d) == (0, 0, 0, 0):  # multicast, reserved, unspecified
            return "other"
        return "public"
    return _ip_scope_any(address)


def _ip_scope_any(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "other"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if any(ip in net for net in _PRIVATE_NETS if net.version == ip.version):
        return "private"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "other"
    # Everything else routes on the internet (documentation ranges stand for public addresses).
    return "public"


def _has_any(text: str, words: tuple[str, ...]) -> bool:
    """Whether any of ``words`` is in ``text`` (a plain loop: cheaper than ``any()`` over a generator)."""
    for word in words:  # noqa: SIM110
        if word in text:
            return True
    return False


def _span(text: str, match: re.Match[str], group: int) -> str:
    """A group of a match found in the lowercased text, spelled as in the original text."""
    return text[match.start(group) : match.end(group)]


def _add_unique(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def _find_signals(kb: KnowledgeBase, flat: str, lines: str | None = None) -> tuple[list[str], str | None, bool]:
    """Match the signal vocabulary against the lowercased, line-joined text.

    ``flat`` contains every substring of the lines (phrases never span a line break), plus
    phrases that a terminal wrapped mid-word, so one scan per keyword suffices. A signal's pattern
    that fails there is tried once more on ``lines`` (the same text with its line breaks): joining
    glues a line's last word to the next line's first (``…: EOF`` + ``这个错误`` reads ``eof这个错误``),
    which a pattern ending at a word boundary cannot match.
    """
    present = kb.scanner.scan(flat)
    by_keyword = kb.by_keyword
    candidates: set[int] = set()
    for keyword in present:
        positions = by_keyword.get(keyword)
        if positions:
            candidates.update(positions)
    found: list[str] = []
    tool: str | None = None
    context = False
    signals = kb.signals
    for position in sorted(candidates):  # the vocabulary's order
        sig = signals[position]
        if sig.all and not sig.all_set <= present:
            continue
        if sig.pattern is not None:
            keyword = next(k for k in sig.any if k in present)
            if not _pattern_hits(sig.pattern, flat, keyword) and (
                lines is None or not _pattern_hits_in_lines(sig.pattern, lines, [k for k in sig.any if k in present])
            ):
                continue
        found.append(sig.id)
        if sig.tool and tool is None:
            tool = sig.tool
        if sig.registry_context:
            context = True
    for masker in kb.maskers:
        if masker.id in found:
            phrases = [p for p in masker.any if p in present]
            for masked in masker.masks:
                if masked in found and _only_inside(kb.signal_by_id[masked].any, phrases, flat, present):
                    found.remove(masked)
    implications = kb.implications
    implied = {i for sig in found if sig in implications for i in implications[sig]}.difference(found)
    if implied:
        # an implied signal holds as if it had been found: its registry context and tool count too
        for signal_id in implied:
            sig = kb.signal_by_id[signal_id]
            context = context or sig.registry_context
            tool = tool or sig.tool
        found.extend(implied)
        found.sort(key=kb.signal_position.__getitem__)
    return found, tool, context


def _only_inside(words: tuple[str, ...], phrases: list[str], flat: str, present: set[str]) -> bool:
    """Every occurrence of ``words`` in the text sits inside one of ``phrases``.

    「本番でこのエラーが出ます」 wrapped around a message that holds no error must not turn it into
    one, and docker's hint "…or if you are behind a proxy" is not the user saying there is a proxy.
    A word outside such phrases ("failed", a second "error", "proxy" on its own) keeps the signal.
    """
    for word in words:
        if word in present:
            inside = sum(flat.count(p) * p.count(word) for p in phrases if word in p)
            if flat.count(word) > inside:
                return False
    return True


def _pattern_hits_in_lines(pattern: re.Pattern[str], lines: str, keywords: list[str]) -> bool:
    """The pattern matches within one line that holds one of ``keywords`` (at most 50 lines looked at).

    Searched line by line, never across a break: the retry finds what joining the lines hid (a
    word boundary at a line's end), not phrases spread over two lines.
    """
    seen: set[int] = set()
    for keyword in keywords:
        start = 0
        while len(seen) < 50:
            index = lines.find(keyword, start)
            if index < 0:
                break
            line_end = lines.find("\n", index)
            line_end = len(lines) if line_end < 0 else line_end
            start = line_end  # the rest of this line is searched below: look on from the next one
            line_start = lines.rfind("\n", 0, index) + 1
            if line_start in seen:  # searched already for an earlier keyword
                continue
            seen.add(line_start)
            if pattern.search(lines, line_start, line_end):
                return True
    return False


def _pattern_hits(pattern: re.Pattern[str], flat: str, keyword: str) -> bool:
    """Run a signal regex near its keyword only, which bounds the work on huge pastes."""
    if len(flat) <= 20_000:
        return pattern.search(flat) is not None
    return any(pattern.search(flat, max(0, index - 600), index + 1200) for index in occurrences(flat, keyword, 50))


def _hosts(text: str, lower: str, facts: Facts, derived: dict[str, set[str]]) -> None:
    kinds = derived["host_kinds"]
    seen: set[str] = set()
    for count, match in enumerate(_HOST.finditer(text)):
        if count > 400:
            break
        host = match.group(1).lower().rstrip(".")
        if host in seen or host.endswith(_FILE_SUFFIXES) or host.endswith(_IGNORED_HOST_SUFFIXES):
            continue
        if _after_variable_sigil(text, match.start(1)):
            continue  # $ACR_NAME.azurecr.io, $env:ACR_NAME.azurecr.io: a template, not a name anyone looked up
        seen.add(host)
        port = int(match.group(2)) if match.group(2) else None
        info = classify_host(host)
        if info.kind == "other":
            continue
        kinds.add(info.kind)
        facts.hosts.append(HostFact(host, info.kind, info.registry, info.cloud, info.region, port))
        if info.kind == "login_server" and facts.login_server is None:
            facts.login_server, facts.registry, facts.cloud = host, info.registry, info.cloud
        elif info.kind in ("data_endpoint", "geo"):
            _add_unique(facts.data_endpoints, host)
            facts.region = facts.region or info.region
            facts.registry = facts.registry or info.registry
            facts.cloud = facts.cloud or info.cloud
        elif info.kind == "privatelink":
            _add_unique(facts.privatelink_hosts, host)
            facts.registry = facts.registry or info.registry
            facts.cloud = facts.cloud or info.cloud
        elif info.kind == "blob":
            _add_unique(facts.blob_hosts, host)
        elif info.kind in ("public_registry", "malformed", "lookalike", "public_lookalike", "data_cdn"):
            _add_unique(facts.other_registry_hosts, host)
    if "public_lookalike" in kinds and _lookalikes_beside_their_names(facts.hosts):
        kinds.discard("public_lookalike")
    if facts.registry is None:
        azure = _AZURE_WORDS.search(lower) is not None
        for gate, pattern, source in zip(_ACR_NAME_GATES, _ACR_NAME_ARG, (text, lower, text), strict=True):
            if gate == "registry" and not azure:
                continue  # "a local registry 'harbor'": a name in quotes is an ACR name only in Azure's words
            name = _acr_name_argument(pattern, source, gate)
            if name is not None:
                facts.registry = name
                derived["host_kinds"].add("acr_name")
                break
    if facts.registry and facts.login_server is None:
        facts.login_server = intended_login_server(facts.registry, facts.cloud)


def _after_variable_sigil(text: str, start: int) -> bool:
    """The name at ``start`` opens with a shell variable (``$NAME.``, PowerShell's ``$env:NAME.``)."""
    return start > 0 and (text[start - 1] == "$" or text[max(0, start - 5) : start].lower() == "$env:")


def _lookalikes_beside_their_names(hosts: list[HostFact]) -> bool:
    """Every misspelt public registry name in the paste is also spelt right in it.

    The tool then used the right name (``failed to resolve reference "docker.io/..."``) and the
    misspelling is the writer's (``an issue at the docler.io side``): it cannot explain the failure.
    A misspelling that did fail stands alone (``ghrc.io/...: connection reset``).
    """
    used = [h.host for h in hosts if h.kind == "public_registry"]
    lookalikes = [h.registry for h in hosts if h.kind == "public_lookalike"]
    return bool(lookalikes) and all(
        intended is not None and any(name == intended or name.endswith("." + intended) for name in used)
        for intended in lookalikes
    )


#: A name the user blanked out before pasting (XXXX, ***, REDACTED): not a bare host name, not a registry name.
_PLACEHOLDER = re.compile(r"(?:x{3,}|\*{3,}|redacted|hidden|masked|removed|censored)\Z")


def _acr_name_argument(pattern: re.Pattern[str], source: str, gate: str) -> str | None:
    """The registry name ``pattern`` finds where ``gate`` occurs (its first occurrences only)."""
    for index in occurrences(source, gate, _ACR_NAME_TRIES):  # the gates never overlap themselves
        m = pattern.match(source, index)
        if m:
            name = m.group(1).lower()
            if name != "registry" and not _PLACEHOLDER.match(name):  # "--name registry" is a placeholder too
                return name
    return None


def _registry_of(reference: str) -> str:
    """The registry part of an image reference; Docker Hub when the first part is not a host."""
    if "://" in reference:
        reference = reference.split("://", 1)[1]
    first, _, rest = reference.partition("/")
    if not rest:
        host = first.split(":")[0]
        return first if "." in host or host == "localhost" else "docker.io"
    return first if names_registry(first) else "docker.io"


#: A name written as a template (``<registry>.azurecr.io``, ``${REGISTRY}``, ``{{ .Values.registry }}``):
#: the user's placeholder for a name, not a host that could be misspelled.
_TEMPLATE_CHARS = frozenset("<>{}$")


_IPV6_LITERAL = re.compile(r"\[(?=[0-9a-f.]{0,44}:)[0-9a-f:.]{2,45}\](?::\d{1,5})?(?:/\S*)?")


def _bare_reference(found: str) -> str:
    """A registry position without the quotes, brackets and commas around it in prose, keeping the
    brackets of an IPv6 literal (``[fd00::5]:5000`` is a registry; ``[ghcr.io]`` is a markdown link)."""
    found = found.strip("\"'`,")
    if _IPV6_LITERAL.fullmatch(found.lower()):
        return found
    return found.strip("[]")


#: What an image reference can start with: a name, a masked name (``***``) or an IPv6 literal.
_REFERENCE_HEAD = re.compile(r"[a-z0-9*\[]")


def _reference_part(found: str) -> str:
    """The image reference at a position after ``docker pull`` and the like, or "" when the words
    there are not one: prose (``docker pull できません``, ``docker pull failed:``), a flag
    (``--help``), a path, a line continuation, or a template (``$REGISTRY/app``, ``${IMAGE}``: its
    registry is unknown, not Docker Hub). References are ASCII, so prose glued to one
    (``alpine:3.19命令``) is cut off."""
    if not found.isascii():  # one C call for the usual ASCII reference; the scan only for prose
        found = found[: next(index for index, char in enumerate(found) if not char.isascii())]
    if (
        not found
        or _REFERENCE_HEAD.match(found) is None
        or found.endswith((":", "/"))
        or not _TEMPLATE_CHARS.isdisjoint(found)
    ):
        return ""
    return found


def _registry_host(text: str, lower: str, facts: Facts, derived: dict[str, set[str]]) -> None:
    """The failing registry even when it is not ACR: image refs, /v2/ URLs, login targets."""
    candidates: list[str] = []
    for gates, pattern, is_host in zip(_REGISTRY_GATES, _REGISTRY_POSITION, _POSITION_IS_HOST, strict=True):
        if facts.login_server:
            break  # an ACR login server is the registry; positions only matter without one
        if not all(_has_any(lower, gate) for gate in gates):
            continue
        for count, match in enumerate(pattern.finditer(lower)):
            if count > 20:
                break
            found = _bare_reference(match.group(1)).lower()
            if not is_host:
                found = _reference_part(found)
                if not found:
                    continue
            value = found if is_host else _registry_of(found)
            if value and not value.startswith("-") and not _TEMPLATE_CHARS.intersection(value):
                candidates.append(value)
    if facts.login_server:
        facts.registry_host = facts.login_server
    elif candidates:
        facts.registry_host = candidates[0]
    elif facts.other_registry_hosts:
        facts.registry_host = facts.other_registry_hosts[0]
    if facts.registry_host:
        name = facts.registry_host.split(":")[0]
        known = next((h for h in facts.hosts if h.host == name), None)  # classified already by _hosts
        kind = known.kind if known is not None else classify_host(name).kind
        derived["registry_class"].add(registry_class_of(kind))
        if kind in ("malformed", "lookalike"):
            derived["host_kinds"].add(kind)
    elif "azurecr" in lower:
        derived["registry_class"].add("acr")
    if not derived["registry_class"]:
        derived["registry_class"].add("none")


def _implied_registry_class(kb: KnowledgeBase, signals: list[str], derived: dict[str, set[str]]) -> None:
    """No registry host in the paste, but a signal says whose registry failed (Google's Artifact
    Registry API, say): that class, so the reply's fix is the one that applies there."""
    if derived["registry_class"] != {"none"}:
        return
    implied = {kb.implied_class[name] for name in signals if name in kb.implied_class}
    if implied:
        derived["registry_class"] = implied


def _network(text: str, lower: str, facts: Facts, derived: dict[str, set[str]]) -> None:
    roles: dict[str, tuple[str, int | None]] = {}
    m = _CLIENT_IP.search(lower) if "client with ip" in lower else None
    if m:
        facts.client_ip = _span(text, m, 1).strip(".:")
        roles[facts.client_ip] = ("client", None)
    lookup_kinds = derived["lookup_kinds"]
    for count, m in enumerate(_LOOKUP.finditer(lower) if "lookup" in lower else ()):
        if count > 20:
            break
        name = m.group(1).lower().rstrip(".")
        if name in ("tcp", "udp"):
            continue
        if "." not in name and not _PLACEHOLDER.match(name) and not _TEMPLATE_CHARS.intersection(name):  # "lookup XXXX", "<domain>": hidden
            lookup_kinds.add("single_label")
        lookup_kinds.add(classify_host(name).kind)
        derived["lookup_hosts"].add(name)
        if m.group(2) and facts.dns_server is None:
            server = _span(text, m, 2)
            facts.dns_server = server + (f":{m.group(3)}" if m.group(3) else "")
            roles[server] = ("dns_server", int(m.group(3)) if m.group(3) else None)
    if facts.dns_server is None and "udp" in lower:
        m = _DNS_UDP.search(lower)
        if m:
            server = _span(text, m, 1)
            facts.dns_server = server + ":53"
            roles[server] = ("dns_server", 53)
    m = _PROXY_VAR.search(lower) if "proxy" in lower else None  # an explicit HTTPS_PROXY= wins: it is the configured value
    if m:
        facts.proxy = _span(text, m, 1)
    elif "proxyconnect" in lower:
        m = _PROXYCONNECT.search(lower)
        # "lookup http": a proxy URL cut at an unescaped character in its password leaves a scheme, not a host
        if m and m.group(1) not in ("lookup", "tcp", "http", "https"):
            proxy = _span(text, m, 1)
            facts.proxy = proxy + (f":{m.group(2)}" if m.group(2) else "")
            roles[proxy.strip("[]")] = ("proxy", int(m.group(2)) if m.group(2) else None)
    dials = _DIAL.finditer(lower) if "dial tcp" in lower else ()
    connects = _CONNECT.finditer(text) if _has_any(text, _CONNECT_WORDS) else ()
    for pattern, matches in ((_DIAL, dials), (_CONNECT, connects)):
        for count, m in enumerate(matches):
            if count > 20:
                break
            if pattern is _DIAL:
                address, port = _span(text, m, 1 if m.group(1) else 2), int(m.group(3))
            else:
                address, port = m.group(1), int(m.group(2))
            if address in roles or port == 53:
                continue
            roles[address] = ("target", port)
            if facts.target_ip is None and _ip_scope(address) != "other":
                facts.target_ip = address
            if port not in facts.ports:
                facts.ports.append(port)
    for count, m in enumerate(_IPV4.finditer(text)):
        if count > 100:
            break
        address = m.group(1)
        if not _valid_ipv4(address):
            continue
        if any(ip.address == address for ip in facts.ips):
            continue
        role, known_port = roles.get(address, ("unknown", None))
        if known_port is None and m.group(2):
            known_port = int(m.group(2))
        facts.ips.append(IpFact(address, _ip_scope(address), role, known_port))
    if facts.client_ip and not any(ip.address == facts.client_ip for ip in facts.ips):
        facts.ips.append(IpFact(facts.client_ip, _ip_scope(facts.client_ip), "client"))
    if facts.target_ip:
        derived["target_ip_scope"].add(_ip_scope(facts.target_ip))
        if facts.target_ip.startswith("172.17."):  # Docker's default bridge (docker0) claims 172.17.0.0/16
            derived["target_ip_scope"].add("docker-bridge")
    elif "private" in lower and "dial tcp" in lower and _DIAL_PRIVATE_PLACEHOLDER.search(lower):
        derived["target_ip_scope"].add("private")
    if facts.dns_server:
        derived["dns_server_scope"].add(_ip_scope(facts.dns_server.rsplit(":", 1)[0].strip("[]")))
    for host in facts.hosts:
        if host.port and host.port not in facts.ports:
            facts.ports.append(host.port)


def _codes(text: str, lower: str, facts: Facts, derived: dict[str, set[str]]) -> None:
    """Status codes, check-health codes, canipull lines, correlation ids (each gated by a cheap test)."""
    for pattern, words in zip(_STATUS, (_STATUS_WORDS, ("status", "response", "http/")), strict=True):
        if not _has_any(lower, words):
            continue
        for count, m in enumerate(pattern.finditer(lower)):
            if count > 50:
                break
            code = int(m.group(1) + m.group(2)) if pattern.groups == 2 else int(m.group(1))
            if code not in facts.status_codes:
                facts.status_codes.append(code)
    derived["status"] = {str(c) for c in facts.status_codes}
    if "_ERROR" in text:
        for count, m in enumerate(_CHECKHEALTH.finditer(text)):
            if count > 20:
                break
            _add_unique(facts.checkhealth_codes, m.group(1))
    derived["checkhealth"] = set(facts.checkhealth_codes)
    if (
        " : ok" in lower
        and not facts.checkhealth_codes
        and not _has_any(lower, ("fail", "error", "warning", "incorrect"))
        and _CHECKHEALTH_OK.search(text)
    ):
        derived["checkhealth"].add("all_ok")
    if "acr" not in lower and "cluster can pull" not in lower and "validating" not in lower and "host name resolution" not in lower:
        return
    steps: dict[str, str] = {}
    if ("succeeded" in lower or "failed" in lower) and ("validating" in lower or "host name resolution" in lower):
        steps = {m.group(1): m.group(2).upper() for m in _CANIPULL.finditer(lower)}
    outcomes = derived["canipull"]
    if steps:
        facts.canipull["steps"] = steps
        for step, result in steps.items():
            if result != "FAILED":
                continue
            if "host name" in step:
                outcomes.add("dns_failed")
            elif "identity" in step or "principal" in step:
                outcomes.add("identity_failed")
            elif "pull permission" in step:
                outcomes.add("pull_denied")
    if "cluster can pull" in lower and _CANIPULL_OK.search(lower):
        facts.canipull["can_pull"] = True
        outcomes.add("ok")
    exchange = _CANIPULL_EXCHANGE.search(lower) if "token exchange" in lower else None
    if exchange:
        facts.canipull["exchange_status"] = int(exchange.group(1))
    location = _CANIPULL_LOCATION.search(lower) if "acr location" in lower else None
    if location:
        facts.canipull["location"] = location.group(1).lower()
        facts.region = facts.region or location.group(1).lower()


def _correlation(text: str, lower: str, facts: Facts) -> None:
    if "correlation" not in lower and "request" not in lower:
        return
    for m in _CORRELATION.finditer(lower):
        _add_unique(facts.correlation_ids, m.group(1).lower())
        if len(facts.correlation_ids) >= 5:
            break


def _kubernetes(text: str, lower: str, facts: Facts) -> None:
    for key, pattern, gates in (
        ("node", _K8S_NODE, ("aks-",)),
        ("namespace", _K8S_NAMESPACE, ("namespace", "-n ", "-n\t")),
        ("pod", _K8S_POD, ("pod/", "pods/")),
        ("context", _K8S_CONTEXT, ("context",)),
    ):
        if not _has_any(text, gates):
            continue
        m = pattern.search(text)
        if m:
            facts.kubernetes[key] = m.group(1)


def _region(text: str, lower: str, facts: Facts) -> None:
    if facts.region or ("region" not in lower and "location" not in lower):
        return
    for m in _REGION_HINT.finditer(lower):
        candidate = m.group(1).lower()
        if candidate in _AZURE_REGIONS:
            facts.region = candidate
            return


def extract(raw: str, kb: KnowledgeBase | None = None) -> Extraction:
    """Normalise, redact and read facts from a paste. Never raises on ``str`` input."""
    kb = kb or default_knowledge()
    redaction = redact_found(normalize(raw))
    text, secret_kinds = redaction.text, redaction.kinds
    if len(raw) > FOCUS_THRESHOLD:
        secret_kinds = sorted(set(secret_kinds) | set(all_secret_kinds(raw[:MAX_INPUT_CHARS])))
    lower = lower_same_length(text)
    flat = unwrap(lower)
    facts = Facts(secrets=secret_kinds)
    derived: dict[str, set[str]] = {
        key: set()
        for key in (
            "host_kinds",
            "lookup_kinds",
            "lookup_hosts",
            "registry_class",
            "target_ip_scope",
            "dns_server_scope",
            "status",
            "checkhealth",
            "canipull",
        )
    }
    signals, tool, signal_context = _find_signals(kb, flat, lower if "\n" in lower else None)
    facts.signals = signals
    facts.tool = tool
    derived["tool"] = {tool} if tool else set()
    _hosts(text, lower, facts, derived)
    _network(text, lower, facts, derived)
    _registry_host(text, lower, facts, derived)
    facts.repository, facts.tag = image_reference(text, lower, facts.registry_host)
    _implied_registry_class(kb, signals, derived)
    _codes(text, lower, facts, derived)
    _correlation(text, lower, facts)
    _kubernetes(text, lower, facts)
    _region(text, lower, facts)
    context = (
        signal_context
        or bool(facts.login_server or facts.data_endpoints or facts.privatelink_hosts)
        or bool(facts.checkhealth_codes)
        or bool(derived["canipull"])
        or bool(derived["host_kinds"] & {"public_registry", "malformed", "lookalike", "public_lookalike"})
    )
    return Extraction(
        facts=facts, text=text, derived=derived, registry_context=context, secret_values=redaction.values
    )
