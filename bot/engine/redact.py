"""Remove secrets from pasted text before anything is stored, logged or echoed.

People paste whole terminal sessions: ``docker login -p``, ``Authorization: Bearer``
headers, ACR refresh tokens (JWTs), SAS URLs, connection strings and service principal
secrets. Every output of the engine is built from the redacted text, and the kinds of
secret found are reported so the bot can tell the author privately to rotate them.
All patterns use bounded quantifiers so a hostile paste cannot make them backtrack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MASK = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    triggers: tuple[str, ...]  # cheap lowercase substring tests; the regex runs only if one is present
    pattern: re.Pattern[str]
    group: int = 0  # the group holding the secret; 0 = the whole match


# Whitespace around separators is horizontal and bounded ([ \t]{0,4}): an unbounded \s* on
# both sides of an optional part backtracks quadratically on a paste full of blank lines.
_SEP = r"[ \t]{0,4}[:=][ \t]{0,4}"
_VALUE = r"(\"[^\"\n]{1,512}\"|'[^'\n]{1,512}'|[^\s\"',;]{1,512})"

_RULES: tuple[_Rule, ...] = (
    _Rule(
        "private-key",
        ("-----begin",),
        re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[\s\S]{0,8000}?-----END [A-Z ]{0,40}PRIVATE KEY-----"),
    ),
    _Rule(
        "authorization-header",
        ("authorization",),
        re.compile(
            r"(?i)\b(?:proxy-)?authorization[\"']?" + _SEP + r"[\"']?"
            r"(?:(?:bearer|basic|token|negotiate|ntlm|digest)[ \t]{1,4})?([^\s\"',;]{6,8192})"
        ),
        1,
    ),
    _Rule("bearer-token", ("bearer",), re.compile(r"(?i)\bbearer[ \t]{1,4}([A-Za-z0-9._~+/=-]{16,8192})"), 1),
    _Rule("jwt", ("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{0,4096}")),
    _Rule(
        "password-flag",
        ("login",),
        re.compile(r"(?i)\blogin\b[^\n]{0,300}?[ \t](?:-p|--password)[ =]" + _VALUE),
        1,
    ),
    _Rule(
        "password-option",
        ("password",),
        re.compile(r"(?i)(?:^|[ \t])--(?:docker-|registry-|admin-)?password[ =]" + _VALUE),
        1,
    ),
    _Rule(
        "password-field",
        ("pass", "pwd"),
        re.compile(r"(?i)[\"']?\b(?:password|passwd|pwd)\b[\"']?" + _SEP + _VALUE),
        1,
    ),
    _Rule(
        "registry-credential",  # az acr credential show: {"name": "password", "value": "..."}
        ('"value"',),
        re.compile(r'(?i)"name"[ \t]{0,4}:[ \t]{0,4}"password2?"[ \t]{0,4},[ \t\r\n]{0,40}"value"[ \t]{0,4}:[ \t]{0,4}"([^"\n]{1,512})"'),
        1,
    ),
    _Rule(
        "docker-config-auth",  # ~/.docker/config.json: "auth": "<base64 user:password>"
        ('"auth"',),
        re.compile(r'(?i)"auth"[ \t]{0,4}:[ \t]{0,4}"([A-Za-z0-9+/=]{8,2048})"'),
        1,
    ),
    _Rule(
        "client-secret",
        ("secret",),
        re.compile(
            r"(?i)(?:\b(?:client[_-]?secret|aadclientsecret|azure_client_secret|secret)\b[\"']?" + _SEP + r"|--client-secret[ =])"
            r"[\"']?([^\s\"',;]{8,512})"
        ),
        1,
    ),
    _Rule(
        "curl-user",
        ("-u ", "-u=", "--user"),
        re.compile(r"(?:^|[ \t])(?:-u|--user)[ =][\"']?[^\s:\"']{1,128}:([^\s\"']{1,256})"),
        1,
    ),
    _Rule(
        "sas-signature",
        ("sig=",),
        re.compile(r"(?i)(?<=[?&])sig=([A-Za-z0-9%+/=_-]{8,512})"),
        1,
    ),
    _Rule(
        "signed-url",
        ("signature=",),
        re.compile(r"(?i)(?<=[?&])(?:X-Amz-Signature|Signature)=([A-Za-z0-9%+/=_~.-]{8,2048})"),
        1,
    ),
    _Rule(
        "connection-string",
        ("accountkey=", "sharedaccesskey="),
        re.compile(r"(?i)\b(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/=]{8,512})"),
        1,
    ),
    _Rule(
        "token-field",
        ("token",),
        re.compile(
            r"(?i)\b(?:access_token|refresh_token|accesstoken|refreshtoken|identitytoken|id_token|token)\b[\"']?"
            + _SEP
            + r"[\"']?([A-Za-z0-9._~+/=-]{20,8192})"
        ),
        1,
    ),
    _Rule("slack-token", ("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,256}")),
    _Rule("slack-app-token", ("xapp-",), re.compile(r"\bxapp-[A-Za-z0-9-]{8,256}")),
    _Rule("github-token", ("gh",), re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,255}")),
    _Rule("aws-key", ("akia",), re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    _Rule(
        "basic-auth-url",  # the password runs to the last '@' that is followed by a host
        ("://",),
        re.compile(
            r"(?i)\b[a-z][a-z0-9+.-]{1,16}://[^\s/:@]{1,128}:([^\s]{1,256}?)@"
            r"(?=[A-Za-z0-9.-]{1,253}(?::\d{1,5})?(?:[/\s\"'\]),;]|$))"
        ),
        1,
    ),
)


def redact(text: str) -> tuple[str, list[str]]:
    """Return the text with secrets masked, and the sorted kinds of secret found."""
    lowered = text.lower()
    found: set[str] = set()
    for rule in _RULES:
        if not any(trigger in lowered for trigger in rule.triggers):
            continue
        replaced = _apply(rule, text)
        if replaced is not text and replaced != text:
            found.add(rule.kind)
            text = replaced
            lowered = text.lower()
    return text, sorted(found)


def _apply(rule: _Rule, text: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        if rule.group == 0:
            return MASK
        value = match.group(rule.group)
        if value is None or value == MASK or value.strip("\"'") == MASK:
            return match.group(0)
        start, end = match.span(rule.group)
        offset = match.start(0)
        whole = match.group(0)
        return whole[: start - offset] + MASK + whole[end - offset :]

    return rule.pattern.sub(substitute, text)


def secret_kinds(text: str) -> list[str]:
    """Kinds of secret anywhere in a (possibly huge) paste, without building a redacted copy.

    The engine reads only the focused part of a huge paste, but the author must be told
    about a secret wherever it sits in what they pasted.
    """
    lowered = text.lower()
    found: set[str] = set()
    for rule in _RULES:
        for trigger in rule.triggers:
            start = 0
            reach = 8_400 if rule.kind == "private-key" else 1_200
            for _ in range(100):  # windows around the trigger keep this linear on hostile input
                index = lowered.find(trigger, start)
                if index < 0:
                    break
                if rule.pattern.search(text, max(0, index - 400), index + reach):
                    found.add(rule.kind)
                    break
                start = index + len(trigger)
            if rule.kind in found:
                break
    return sorted(found)


def redact_text(text: str) -> str:
    """Convenience for loggers: the redacted text only."""
    return redact(text)[0]
