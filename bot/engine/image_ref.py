"""The repository and tag a paste failed on, so fix commands name the user's own image.

``az acr repository show-tags --name contosoreg --repository web`` is a command the user can run
as it is; ``--repository <repository>`` is homework. The image is read where tools print it: an
image reference on the failing registry's host (``contosoreg.azurecr.io/team/web:1.4``), a
registry API URL (``/v2/team/web/manifests/1.4``), a token request's scope
(``scope=repository%3Ateam%2Fweb%3Apull``), or Docker's own words for a Docker Hub image
(``pull access denied for acme/web``). Only names in the distribution spec's shape are taken, so
what reaches a shell command is a plain path and tag, never text of the paste's choosing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

from bot.engine.hosts import names_registry
from bot.engine.occurrences import occurrences

# One path component of a repository name (the distribution spec's grammar, bounded).
_COMPONENT = r"[a-z0-9]{1,64}(?:(?:[._]|__|-{1,8})[a-z0-9]{1,64}){0,16}"
_REPOSITORY = rf"{_COMPONENT}(?:/{_COMPONENT}){{0,8}}"
#: All of the tag, and not a digest's "sha256:"; a colon after it only where an error message goes
#: on ("…/web:1.7: Get https://…", Go's way of prefixing an error with what failed).
_TAG = r"[a-z0-9_][a-z0-9_.-]{0,127}(?![a-z0-9_.-])(?!:\S)"
#: After "<host>/": a repository and an optional tag (a digest is left out: commands take a tag).
_AFTER_HOST = re.compile(rf"({_REPOSITORY})(?::({_TAG}))?")
#: A registry API URL: /v2/<repository>/manifests/<reference> (or its blobs and tags lists).
_API_URL = re.compile(rf"/v2/({_REPOSITORY})/(?:manifests/(?:({_TAG}))?|blobs/|tags/)")
#: A token request's scope, decoded: ``repository:<name>:pull`` (or push, delete, ``*``, a list).
_SCOPE = re.compile(rf"repository:({_REPOSITORY}):(?:pull|push|delete|\*)")
#: Docker's words for an image with no registry host (Docker Hub), and what follows them.
_DOCKER_PHRASES = ("pull access denied for ", "manifest for ", "repository ")
_DOCKER_TAIL = re.compile(rf"(?:docker\.io/)?({_REPOSITORY})(?::({_TAG}))?(?:,| not found| does not exist)")
#: Path heads that are always a registry's API routes, never repositories.
_ROUTE_HEADS = frozenset(("v1", "v2", "oauth2", "token"))
#: Routes whose head is also a common repository name ("api", "service", "acr"): a route only with
#: the route's next part (Harbor's ``api/v2.0``, Docker's ``service/token``, ACR's ``acr/v1``), so
#: ``contosoreg.azurecr.io/api:1.4`` and ``…/service/web`` keep their names.
_ROUTE_PREFIXES = ("api/v1", "api/v2", "service/token", "acr/v1", "acr/v2")
_HOST_BOUNDARY = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")
#: Occurrences of the host looked at: a long log repeats the same image.
_MAX_OCCURRENCES = 20


def image_reference(text: str, lower: str, registry_host: str | None) -> tuple[str | None, str | None]:
    """``(repository, tag)`` of the image the paste shows failing, each ``None`` when not shown.

    ``lower`` is ``text`` lowercased with the same length: names are matched there and a tag's
    case is read back from ``text``. When the error names the repository without its tag
    (``pull access denied for acme/web``), the tag is read where the paste writes the same image
    with one (``docker pull acme/web:2.3`` a line above).
    """
    repository, tag = _repository_where_it_failed(text, lower, registry_host)
    if repository is not None and tag is None:
        tag = _tag_elsewhere(text, lower, repository)
    return repository, tag


def _repository_where_it_failed(text: str, lower: str, registry_host: str | None) -> tuple[str | None, str | None]:
    """The first image the paste shows failing: on the registry's host, in an API URL or token
    scope, or in Docker's words for a Docker Hub image."""
    if registry_host:
        found = _on_host(text, lower, registry_host.lower())
        if found is not None:
            return found
    if "/v2/" in lower:
        for count, match in enumerate(_API_URL.finditer(lower)):
            if count >= _MAX_OCCURRENCES:
                break
            if not _api_route(match.group(1)):
                return match.group(1), _tag(text, match, 2)
    if "scope=repository" in lower:
        repository = _token_scope(lower)
        if repository is not None:
            return repository, None
    for phrase in _DOCKER_PHRASES:
        for index in _occurrences(lower, phrase):
            words = _DOCKER_TAIL.match(lower, index + len(phrase))
            # a host in front ("." in the first component) belongs to the rules above
            if words and "." not in words.group(1).split("/", 1)[0] and not _api_route(words.group(1)):
                return words.group(1), _tag(text, words, 2)
    return None, None


_TAG_AT = re.compile(_TAG)
#: Characters that may stand right before an image reference (a space, a quote, ``image=``...).
_REFERENCE_START = frozenset(" \t\n\r\"'`=([,")


def _tag_elsewhere(text: str, lower: str, repository: str) -> str | None:
    """The tag written after the same repository elsewhere in the paste (``acme/web:2.3``), only
    where the name stands alone or right after a registry host, never inside a longer name."""
    names = [repository]
    if repository.startswith("library/"):  # Docker Hub's official images are written without it
        names.append(repository[len("library/") :])
    for name in names:
        needle = name + ":"
        for index in _occurrences(lower, needle):
            if index > 0 and lower[index - 1] not in _REFERENCE_START and not _after_host(lower, index - 1):
                continue
            match = _TAG_AT.match(lower, index + len(needle))
            tag = _tag(text, match, 0) if match is not None else None
            if tag:
                return tag
    return None


#: A registry host as written before an image's path: a DNS name or IPv4 address, and a port.
_HOST = re.compile(r"(?:[a-z0-9-]{1,63}\.){0,8}[a-z0-9-]{1,63}(?::\d{1,5})?")


def _after_host(lower: str, slash: int) -> bool:
    """``lower[slash]`` is the ``/`` after a registry host (``ghcr.io/``, ``localhost:5000/``)."""
    if lower[slash] != "/":
        return False
    begin = slash
    while begin > 0 and slash - begin < 270 and lower[begin - 1] not in _REFERENCE_START:
        begin -= 1
    if begin > 0 and lower[begin - 1] not in _REFERENCE_START:
        return False  # no start within a host's length: not a host
    host = lower[begin:slash]
    for scheme in ("https://", "http://", "docker://", "oci://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    return _HOST.fullmatch(host) is not None and names_registry(host)


def _token_scope(lower: str) -> str | None:
    """The repository a token was asked for (``/oauth2/token?scope=repository%3Ateam%2Fweb%3Apull``):
    registries name it there when the manifest request itself is not in the paste."""
    for index in _occurrences(lower, "scope=repository"):
        scope = unquote(lower[index + len("scope=") : index + 400]).lower()
        match = _SCOPE.match(scope)
        if match and not _api_route(match.group(1)):
            return match.group(1)
    return None


def _api_route(repository: str) -> bool:
    """A registry API or web route read as a path (``v2/...``, ``oauth2/token``), not a repository."""
    if repository.split("/", 1)[0] in _ROUTE_HEADS:
        return True
    for prefix in _ROUTE_PREFIXES:
        if repository.startswith(prefix) and repository[len(prefix) : len(prefix) + 1] in ("", "/", "."):
            return True
    return False


def _on_host(text: str, lower: str, host: str) -> tuple[str | None, str | None] | None:
    """The first image reference written on ``host`` (``host/repository[:tag]``)."""
    needle = host + "/"
    for index in _occurrences(lower, needle):
        if index > 0 and lower[index - 1] in _HOST_BOUNDARY:
            continue  # part of a longer host name (evilcontosoreg.azurecr.io)
        match = _AFTER_HOST.match(lower, index + len(needle))
        if match is None or _api_route(match.group(1)):
            continue
        return match.group(1), _tag(text, match, 2)
    return None


def _occurrences(lower: str, needle: str) -> Iterator[int]:
    """Where ``needle`` starts in ``lower``, its first ``_MAX_OCCURRENCES`` times: a long log
    repeats the same image, and every reader here looks at a bounded number of places."""
    return occurrences(lower, needle, _MAX_OCCURRENCES)


def _tag(text: str, match: re.Match[str], group: int) -> str | None:
    """The tag with its case as pasted, without the sentence's full stop after it."""
    if match.group(group) is None:
        return None
    tag = text[match.start(group) : match.end(group)].rstrip(".-")
    return tag or None
