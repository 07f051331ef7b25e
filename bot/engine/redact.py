"""Remove secrets from pasted text before anything is stored, logged or echoed.

People paste whole terminal sessions: ``docker login -p``, ``echo … | docker login
--password-stdin``, ``Authorization: Bearer`` headers, ACR refresh tokens (JWTs), SAS URLs,
proxy URLs with a password, connection strings, service principal secrets, private keys,
``az`` answers in JSON or as a table. Every output of the engine is built from the redacted
text, and the kinds of secret found are reported so the bot can tell the author privately to
rotate them. Each secret value found is also masked wherever else it appears in the paste.

Linear time: every rule is gated by a cheap substring test, its regex starts on a literal or a
small character set and has bounded quantifiers only, and private keys are found with
``str.find`` instead of a regex that would rescan a long window from every header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

MASK = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    triggers: tuple[str, ...]  # cheap lowercase substring tests; the regex runs only if one is present
    pattern: re.Pattern[str]
    group: int = 0  # the group holding the secret; 0 = the whole match
    accept: Callable[[str], bool] | None = None  # a further test of the value (e.g. "looks random")


@dataclass(slots=True)
class Redaction:
    """The redacted text, the kinds of secret found, and the values masked (kept in memory only)."""

    text: str
    kinds: list[str]
    values: list[str] = field(default_factory=list)


# Whitespace around separators is horizontal and bounded ([ \t]{0,4}): an unbounded \s* on
# both sides of an optional part backtracks quadratically on a paste full of blank lines.
_SEP = r"[ \t]{0,4}[:=：][ \t]{0,4}"
#: The separator of a generic ``name: value`` setting: '=' as in env files and connection strings, or
#: ':' after a quoted name (JSON) or before a space (YAML). A bare ``name:value`` is an image tag
#: (``frontend-noauth:v3.0.256``) or a host and port, not a setting.
_KEY_SEP = r"(?:[\"']?[ \t]{0,4}[=＝][ \t]{0,4}|[\"'][ \t]{0,4}[:：][ \t]{0,4}|[ \t]{0,4}[:：][ \t]{1,4})"
_VALUE = r"(\"[^\"\n]{1,512}\"|'[^'\n]{1,512}'|[^\s\"',;{\[][^\s\"',;]{0,511})"
#: A value that is a variable, a template or an existing mask: nothing to hide, nothing to report.
_PLACEHOLDER = re.compile(
    r"(?:\$|%[A-Za-z_][A-Za-z0-9_]{0,60}%$|<[^<>]{0,60}>$|\{\{|\*{2,}$|[xX]{3,}$|\.{3}|"
    r"[\[(<]?(?:redacted|hidden|masked|removed|omitted|secret|password|token|none|null|true|false|yes|no|stdin)[\])>]?$)",
    re.IGNORECASE,
)


def _real(value: str) -> bool:
    return bool(value) and _PLACEHOLDER.match(value) is None


_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?")


def _random_looking(value: str) -> bool:
    """A token rather than a word, a name or a path: mixes digits, cases or symbols, or is long."""
    value = value.strip("\"'")
    if len(value) < 8 or not _real(value) or "://" in value or value.count("/") > max(1, len(value) // 16):
        return False
    if _GUID.fullmatch(value):
        return False  # subscription, tenant, principal and correlation ids are identifiers
    if len(value) >= 24:
        return True
    if value.replace("-", "").replace("_", "").replace(".", "").isalpha():
        return False  # a word or a kebab-case name (acr-pull, unexpected, required)
    classes = (
        any(c.isdigit() for c in value)
        + any(c.isupper() for c in value)
        + any(c.islower() for c in value)
        + any(not c.isalnum() for c in value)
    )
    return classes >= 2


def worth_remasking(value: str) -> bool:
    """Mask a found value elsewhere only when it cannot be an ordinary word of the paste."""
    return len(value) >= 6 and not value.isalpha() and _real(value)


#: Names whose value is a secret: ``ACR_PASSWORD=…``, ``"clientSecret": …``, ``_authToken=…``.
_SECRET_KEY_NAMES = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|"
    r"signing[_-]?key|subscription[_-]?key|client[_-]?key[_-]?data|credentials?|_pat|auth"
)

_RULES: tuple[_Rule, ...] = (
    _Rule(
        "authorization-header",
        ("authorization",),
        re.compile(
            r"(?i)\b(?:proxy-)?authorization[\"']?" + _SEP + r"[\"']?"
            r"(?:(?:bearer|basic|token|negotiate|ntlm|digest|sharedaccesssignature)[ \t]{1,4})?([^\s\"',;]{6,8192})"
        ),
        1,
        _random_looking,  # "may require authorization: server message" is prose
    ),
    _Rule("bearer-token", ("bearer",), re.compile(r"(?i)\bbearer[ \t]{1,4}([A-Za-z0-9._~+/=-]{16,8192})"), 1),
    _Rule(  # the signature is optional: a log line or a chat message may cut the token short
        "jwt", ("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}(?:\.[A-Za-z0-9_-]{0,4096})?")
    ),
    _Rule(
        "docker-config-auth",  # .dockerconfigjson / .dockercfg values are base64 of the whole config
        ("dockerconfigjson", "dockercfg", "eyjhdxrocyi6"),
        re.compile(
            r"(?i)(?:\.docker(?:configjson|cfg)[\"']?[ \t]{0,4}:[ \t]{0,4}[\"']?([A-Za-z0-9+/=]{16,16384})"
            r"|\b(eyJhdXRocyI6[A-Za-z0-9+/=]{8,16384}))"
        ),
    ),
    _Rule(
        "password-stdin",  # echo -n "pw" | docker login --password-stdin, and here-strings
        ("echo", "printf", "write-output", "<<<"),
        re.compile(
            r"(?i)(?:\b(?:echo|printf|write-output)(?:[ \t]{1,4}-[neE]{1,3}){0,3}(?:[ \t]{1,4}[\"']%s(?:\\n)?[\"'])?"
            r"[ \t]{1,4}" + _VALUE + r"[ \t]{0,4}\|[^\n|]{0,200}?(?:login|password-stdin|passwd|chpasswd)"
            r"|password-stdin[^\n]{0,80}?<<<[ \t]{0,4}" + _VALUE + r")"
        ),
        0,
        _real,
    ),
    _Rule(
        "password-flag",  # -p after a login command on the same line (elsewhere -p is a port or a path)
        ("login", "sshpass"),
        re.compile(r"(?i)\b(?:login|sshpass)\b[^\n]{0,300}?[ \t]-p(?:[ =]|(?=[\"']))" + _VALUE),
        1,
        _real,
    ),
    _Rule(
        "password-option",  # --password X, --docker-password=X, --http-password=X, -Password X
        ("pass",),
        # "WARNING! Using --password via the CLI is insecure" is Docker's own warning, not a password
        re.compile(r"(?i)(?:^|[ \t])-{1,2}(?:[a-z]{1,12}-)?(?:password|passwd)(?:[ =]|(?=[\"']))(?!via the )" + _VALUE),
        1,
        _real,
    ),
    _Rule(
        "registry-credential",  # az acr credential show / token create: {"name": "password1", "value": "..."}
        ('"value"',),
        re.compile(
            r"(?i)(?:\"name\"[ \t]{0,4}:[ \t]{0,4}\"password[12]?\"[ \t]{0,4},[ \t\r\n]{0,40}"
            r"|password\"[ \t]{0,4}:[ \t]{0,4}\{[ \t\r\n]{0,40})"
            r"\"value\"[ \t]{0,4}:[ \t]{0,4}\"([^\"\n]{1,512})\"?"
        ),
        1,
        _real,
    ),
    _Rule(
        "secret-value",  # az … keys list / credential answers: "value": "<long random string>"
        ('"value"',),
        re.compile(r"(?i)\"value\"[ \t]{0,4}:[ \t]{0,4}\"([^\"\s]{20,512})"),
        1,
        _random_looking,
    ),
    _Rule(
        "password-field",  # password: x, "passwd": "x", Password=x; (connection strings), -passin pass:x
        ("pass", "pwd"),
        re.compile(r"(?i)(?:\b(?:password|passwd|pwd|passphrase)\b|\bpass(?=:[^\s]))[\"']?" + _SEP + _VALUE),
        1,
        _real,
    ),
    _Rule(
        "secret-setting",  # ACR_PASSWORD=x, ARM_CLIENT_SECRET=x, "clientSecret": x, _authToken=x, api_key=x
        ("pass", "secret", "token", "key", "credential", "_pat", "auth"),
        re.compile(r"(?i)(?:" + _SECRET_KEY_NAMES + r")" + _KEY_SEP + r"[\"']?([^\s\"',;&<>]{1,8192})"),
        1,
        _random_looking,
    ),
    _Rule(
        "secret-setting",  # same, with a password-ish name the value needs no shape: ACR_PASSWORD=hunter2
        ("pass", "pwd"),
        re.compile(r"(?i)(?:password|passwd|pwd)[\"']?" + _SEP + _VALUE),
        1,
        _real,
    ),
    _Rule(
        "secret-setting",  # <password>x</password>, <add key="ClearTextPassword" value="x" />
        ("<pass", "<secret", "<token", "password\"", "secret\"", "token\"", "apikey\""),
        re.compile(
            r"(?i)(?:<(password|passphrase|secret|token|privateKey|apiKey)>([^<\n]{1,512})</\1>"
            r"|key=\"[A-Za-z0-9_.-]{0,40}(?:password|secret|token|apikey)\"[ \t]{1,4}value=\"([^\"\n]{1,512})\")"
        ),
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
            r"(?i)(?:\b(?:client[_-]?secret|aadclientsecret|azure_client_secret|secret)\b" + _KEY_SEP + r"|--client-secret[ =])"
            r"[\"']?([^\s\"',;&]{8,512})"
        ),
        1,
        _real,
    ),
    _Rule(
        "curl-user",  # curl -u user:pw, --user, --proxy-user, skopeo --creds/--src-creds/--dest-creds
        ("-u", "--user", "--proxy-user", "creds"),
        re.compile(
            r"(?:^|[ \t])(?:-u|-U|--user|--proxy-user|--(?:src-|dest-|registry-)?creds)[ =][\"']?[^\s:\"']{1,128}:([^\s\"']{1,256})"
        ),
        1,
        _real,
    ),
    _Rule("sas-signature", ("sig=",), re.compile(r"(?i)(?<=[?&])sig=([A-Za-z0-9%+/=_-]{8,512})"), 1),
    _Rule(
        "signed-url",
        ("signature=", "code="),
        re.compile(r"(?i)(?<=[?&])(?:(?:X-Amz-Signature|Signature)=([A-Za-z0-9%+/=_~.-]{8,2048})|code=([A-Za-z0-9%+/=_~.-]{16,2048}))"),
        0,
        _real,
    ),
    _Rule(
        "connection-string",
        ("accountkey=", "sharedaccesskey="),
        re.compile(r"(?i)\b(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/=]{8,512})"),
        1,
    ),
    _Rule(
        "token-field",  # "accessToken": "...", refresh_token=..., identitytoken
        ("token",),
        re.compile(
            r"(?i)\b(?:access_token|refresh_token|accesstoken|refreshtoken|identitytoken|registrytoken|id_token|token)\b[\"']?"
            + _SEP
            + r"[\"']?([A-Za-z0-9._~+/=-]{20,8192})"
        ),
        1,
    ),
    _Rule("slack-token", ("xox",), re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{8,256}")),
    _Rule("slack-app-token", ("xapp-",), re.compile(r"\bxapp-[A-Za-z0-9-]{8,256}")),
    _Rule(
        "slack-webhook",
        ("hooks.slack.com",),
        re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{0,60}/([A-Za-z0-9]{16,64})"),
        1,
    ),
    _Rule("github-token", ("gh", "github_pat_"), re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{30,255})")),
    _Rule("gitlab-token", ("gl",), re.compile(r"\bgl(?:pat|rt|dt|ptt|cbt|oas|soat)-[A-Za-z0-9_-]{20,64}")),
    _Rule("npm-token", ("npm_",), re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    _Rule("aws-key", ("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    _Rule("google-api-key", ("aiza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    _Rule("api-key", ("sk_", "sk-", "rk_", "sg."), re.compile(r"\b(?:[sr]k_(?:live|test)_[0-9A-Za-z]{16,247}|sk-[A-Za-z0-9_-]{20,256}|SG\.[\w-]{16,32}\.[\w-]{16,64})")),
    _Rule("client-secret", ("q~",), re.compile(r"(?<![A-Za-z0-9_.~-])[A-Za-z0-9_.~-]{3}\dQ~[A-Za-z0-9_.~-]{20,40}")),
    _Rule(
        "storage-key",  # an 88-character base64 account key on its own (az storage account keys list)
        ("==",),
        re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])"),
    ),
    _Rule("cookie", ("cookie",), re.compile(r"(?im)^[ \t>]{0,4}(?:set-)?cookie[ \t]{0,4}:[ \t]{0,4}([^\n]{6,4096})"), 1),
    _Rule(
        "password-label",  # パスワード：x, パスワードは x です, アクセストークン: x (the value is ASCII)
        ("パスワード", "ﾊﾟｽﾜｰﾄﾞ", "暗証番号", "シークレット", "トークン", "アクセスキー", "秘密鍵"),
        re.compile(
            r"(?:パスワード|ﾊﾟｽﾜｰﾄﾞ|暗証番号|シークレット|トークン|アクセスキー|秘密鍵)[ \t　]{0,4}(?:は|[:：=＝])[ \t　]{0,4}"
            r"[\"'「]?([!-~]{4,512}?)(?=[\"'」]|[\s　]|[^!-~]|$)"
        ),
        1,
        _real,
    ),
    _Rule(
        "basic-auth-url",  # scheme://user:password@host; the user may hold an '@' (jdoe@contoso.com)
        ("://",),
        re.compile(
            r"(?i)\b[a-z][a-z0-9+.-]{1,16}://[^\s/:\"'<>]{0,128}:([^\s\"'<>]{1,256}?)@"
            r"(?=[A-Za-z0-9.-]{1,253}(?::\d{1,5})?(?:[/\s\"'\]),;?#]|$))"
        ),
        1,
    ),
    _Rule(
        "url-token",  # https://<token>@github.com: a user part that is a token, not a name
        ("://",),
        re.compile(r"(?i)\b[a-z][a-z0-9+.-]{1,16}://([A-Za-z0-9_.~%-]{16,256})@(?=[A-Za-z0-9.-]{1,253}(?::\d{1,5})?(?:[/\s\"'\]),;?#]|$))"),
        1,
        lambda value: _random_looking(value) and any(c.isdigit() for c in value),
    ),
)

_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----")
#: What follows a header when the paste was cut before the END line: base64 lines, PEM headers.
_PEM_BODY = re.compile(
    r"(?:(?:[A-Za-z0-9+/=]{1,100}|Proc-Type:[^\n\\]{0,80}|DEK-Info:[^\n\\]{0,120})?[ \t]{0,4}(?:\r?\n|\\n)){0,300}"
    r"[A-Za-z0-9+/=]{0,100}"
)
_PEM_REACH = 16_384
_TABLE_HEADER = re.compile(r"(?im)^[ \t]{0,8}USERNAME[ \t]{1,40}PASSWORD[ \t]{1,80}PASSWORD2[ \t]{0,8}$")
_TABLE_ROW = re.compile(r"[ \t]{0,8}(\S{1,128})[ \t]{1,80}(\S{4,512})(?:[ \t]{1,80}(\S{4,512}))?")


def redact(text: str) -> tuple[str, list[str]]:
    """Return the text with secrets masked, and the sorted kinds of secret found."""
    found = redact_found(text)
    return found.text, found.kinds


def redact_found(text: str) -> Redaction:
    """Mask every secret; return the text, the kinds found and the values masked."""
    lowered = text.lower()
    kinds: set[str] = set()
    values: list[str] = []
    if "-----begin" in lowered:
        replaced = _mask_private_keys(text, values)
        if replaced != text:
            kinds.add("private-key")
            text, lowered = replaced, replaced.lower()
    if "password2" in lowered:
        replaced = _mask_credential_table(text, values)
        if replaced != text:
            kinds.add("registry-credential")
            text, lowered = replaced, replaced.lower()
    for rule in _RULES:
        if not any(trigger in lowered for trigger in rule.triggers):
            continue
        replaced = _apply(rule, text, values)
        if replaced != text:
            kinds.add(rule.kind)
            text = replaced
            lowered = text.lower()
    if values:
        text = mask_values(text, values)
    return Redaction(text, sorted(kinds), values)


def mask_values(text: str, values: list[str]) -> str:
    """Mask every occurrence of secret values already found (a password typed twice, echoed back)."""
    for value in sorted(set(values), key=len, reverse=True):
        if worth_remasking(value) and value in text:
            text = text.replace(value, MASK)
    return text


def _remember(values: list[str], value: str) -> None:
    value = value.strip().strip("\"'")
    if len(value) >= 6 and MASK not in value and len(values) < 200:
        values.append(value)


def _apply(rule: _Rule, text: str, values: list[str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        group = rule.group or next((i for i in range(match.re.groups, 0, -1) if match.group(i)), 0)
        value = match.group(group)
        if value is None or MASK in value:
            return match.group(0)
        if rule.accept is not None and not rule.accept(value.strip("\"'")):
            return match.group(0)
        if rule.group == 0 and match.re.groups == 0:
            _remember(values, match.group(0))
            return MASK
        _remember(values, value)
        start, end = match.span(group)
        offset = match.start(0)
        whole = match.group(0)
        return whole[: start - offset] + MASK + whole[end - offset :]

    return rule.pattern.sub(substitute, text)


def _mask_private_keys(text: str, values: list[str]) -> str:
    """Mask PEM private keys with ``str.find``: linear however many headers a paste repeats.

    A block runs from its BEGIN line to the next END line; when the END line was not pasted,
    the base64 body that follows the header is masked. The next END position is searched
    once and reused for every header before it, so repeated headers never rescan the text.
    """
    lowered = text.lower()
    parts: list[str] = []
    position = 0  # text before this is already emitted
    search = 0
    next_end = -2  # -2: not searched yet; -1: there is no END after ``search``
    while True:
        begin = lowered.find("-----begin ", search)
        if begin < 0:
            break
        header = _PEM_BEGIN.match(text, begin, begin + 80)
        if header is None:
            search = begin + 11
            continue
        if next_end != -1 and next_end < header.end():
            next_end = lowered.find("-----end ", header.end())
        stop = -1
        if 0 <= next_end <= header.end() + _PEM_REACH:
            footer = _PEM_END.match(text, next_end, next_end + 80)
            if footer is not None:
                stop = footer.end()
        if stop < 0:
            body = _PEM_BODY.match(text, header.end(), header.end() + _PEM_REACH)
            stop = body.end() if body else header.end()
        block = text[header.end() : stop]
        for line in block.replace("\\n", "\n").split("\n"):
            if len(line.strip()) >= 16:
                _remember(values, line.strip())
        parts.append(text[position:begin])
        parts.append(MASK)
        position = search = max(stop, header.end())
    if not parts:
        return text
    parts.append(text[position:])
    return "".join(parts)


def _mask_credential_table(text: str, values: list[str]) -> str:
    """``az acr credential show -o table``: the row under USERNAME PASSWORD PASSWORD2 holds two passwords."""
    out = text
    for header in _TABLE_HEADER.finditer(text):
        rest = text[header.end() : header.end() + 2000].split("\n")[1:4]
        for line in rest:
            if set(line.strip()) <= {"-", " "}:
                continue
            row = _TABLE_ROW.match(line)
            if row:
                masked = line
                for secret in (row.group(2), row.group(3)):
                    if secret:
                        _remember(values, secret)
                        masked = masked.replace(secret, MASK)
                out = out.replace(line, masked)
            break
    return out


def secret_kinds(text: str, lowered: str | None = None) -> list[str]:
    """Kinds of secret anywhere in a (possibly huge) paste, without building a redacted copy.

    The engine reads only the focused part of a huge paste, but the author must be told
    about a secret wherever it sits in what they pasted. Each rule runs only in windows
    around its triggers, at most ``_WINDOWS`` of them, so this stays linear on hostile input.
    """
    lowered = text.lower() if lowered is None else lowered
    found: set[str] = set()
    if "-----begin" in lowered:
        index = lowered.find("-----begin")
        if _mask_private_keys(text[index : index + _PEM_REACH], []) != text[index : index + _PEM_REACH]:
            found.add("private-key")
    windows = 0
    for rule in _RULES:
        if rule.kind in found:
            continue
        for trigger in rule.triggers:
            start = 0
            for _ in range(20):
                index = lowered.find(trigger, start)
                if index < 0 or windows >= _WINDOWS:
                    break
                windows += 1
                piece = text[max(0, index - 300) : index + 900]
                if _apply(rule, piece, []) != piece:
                    found.add(rule.kind)
                    break
                start = index + len(trigger)
            if rule.kind in found:
                break
    return sorted(found)


_WINDOWS = 400


def redact_text(text: str) -> str:
    """Convenience for loggers: the redacted text only."""
    return redact_found(text).text
