"""Remove secrets from pasted text before anything is stored, logged or echoed.

People paste whole terminal sessions: ``docker login -p``, ``echo … | docker login
--password-stdin``, ``Authorization: Bearer`` headers, ACR refresh tokens (JWTs), SAS URLs,
proxy URLs with a password, connection strings, service principal secrets, private keys,
``az`` answers in JSON or as a table. Every output of the engine is built from the redacted
text, and the kinds of secret found are reported so the bot can tell the author privately to
rotate them. Each secret value found is also masked wherever else it appears in the paste.

Linear time: every rule is gated by a cheap substring test, its regex starts on a literal or a
small character set and has bounded quantifiers only, a gap between a rule's head and its
value stops at the next head (so no window is scanned twice), a match repeated many times is
replaced from a cache, and private keys are found with ``str.find`` instead of a regex that
would rescan a long window from every header. ``benchmarks/adversarial.py`` times every
hostile shape redacted whole (as the log redactor does).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from bot.engine.keywords import KeywordScanner

MASK = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class _Rule:
    """One shape of secret.

    ``triggers`` are cheap lowercase substring tests: the rule runs only if one of them is in
    the text (and one of ``also``, when given). A rule with ``keys`` is *keyed*: each
    occurrence of a key is found with ``str.find`` and ``pattern`` is matched right after it
    (``ACR_PASSWORD`` + ``=hunter2``), instead of searching the text with a regex that starts
    with a long alternation of names, which is slow at every position.
    """

    kind: str
    triggers: tuple[str, ...]
    pattern: str  # the regex's source; ``regex`` compiles it
    group: int = 0  # the group holding the secret; 0 = the whole match (or the last group that matched)
    accept: Callable[[str], bool] | None = None  # a further test of the value (e.g. "looks random")
    also: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()

    @property
    def regex(self) -> re.Pattern[str]:
        """The compiled pattern, compiled the first time a text holds one of the rule's triggers:
        most rules never run in a process that diagnoses one paste, and compiling all of them at
        import was a twentieth of a one-shot ``acrcheck diagnose``."""
        return _compiled(self.pattern)


_compiled = lru_cache(maxsize=None)(re.compile)


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


#: A value glued to ``-p``: after a lowercase ``p``, neither all letters nor all digits (bounded lookaheads).
_ATTACHED = r"(?-i:(?<=-p))(?=[^\s\"'=-])(?=[^\s\"']{0,255}[^A-Za-z\s\"'])(?=[^\s\"']{0,255}[^0-9\s\"'])"
#: A heredoc's start after ``<<`` (never ``<<<``, a here-string): ``EOF``, ``-'EOF'``, ``"END"``.
_HEREDOC = r"-?[ \t]{0,4}+[\"']?\w{1,32}+[\"']?"


def _gap_before(head: str, char: str, reach: int, least: int = 0) -> str:
    """The gap between a rule's head and what follows it: up to ``reach`` of ``char``, lazily.

    The gap never runs over the start of another head. ``login[^\\n]{0,300}?[ \\t]-p`` alone
    scans 300 characters from every ``login``, so a line of ``login login login …`` costs
    300 steps per word; stopped at the next head, the gaps of successive heads never overlap
    and every character is read once. Where the secret follows the gap the matches are the
    same (the next head reaches whatever the previous one could, from closer).
    """
    return f"(?:(?!{head}){char}){{{least},{reach}}}?"


#: A URL's ``scheme://`` (possessive: the scheme ends where ':' is, backtracking cannot help).
_URL_SCHEME = r"\b[a-z][a-z0-9+.-]{1,16}+://"
#: ``scheme://user:`` before a password in a URL (the user may hold an '@': jdoe@contoso.com).
_URL_USERINFO = _URL_SCHEME + r"[^\s/:\"'<>]{0,128}+:"
#: What follows the '@' closing a URL's user part: a host name or address, a port, the end of the host.
_URL_HOST_AHEAD = r"(?=[A-Za-z0-9.-]{1,253}+(?::\d{1,5}+)?+(?:[/\s\"'\]),;?#]|$))"


def _real(value: str) -> bool:
    return bool(value) and _PLACEHOLDER.match(value) is None


#: A path segment made of words: lowercase (``site-packages``), Capitalised or CamelCase (``AppData``).
_WORDY_SEGMENT = re.compile(r"[a-z0-9._~-]+|(?:[A-Z][a-z0-9._-]+)+|[A-Z]")


def _looks_like_path(value: str) -> bool:
    """``/usr/lib/python3.11/site-packages/x`` is a path; base64 with slashes (``KFluIZnEyj/bRs``) is not."""
    segments = [part for part in value.split("/") if part]
    if value.count("/") < 2 or len(segments) < 2 or "//" in value.strip("/") or "+" in value or "=" in value:
        return False
    # Counted in characters, not segments: an AWS secret key (``Yc/QV67CyCFwRukp9zf5FVYiDRey91YA/t/Ugj``)
    # has short word-like pieces around one long random run, a path is words all along.
    wordy = sum(len(part) for part in segments if _WORDY_SEGMENT.fullmatch(part))
    return wordy * 4 >= sum(len(part) for part in segments) * 3


_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?")


_PATH = re.compile(r"~?/[\w./~-]{0,512}")


def _password(value: str) -> bool:
    """Any value, except placeholders and paths (``PWD=/home/azureuser`` is the working directory)."""
    return _real(value) and _PATH.fullmatch(value) is None


def _random_looking(value: str) -> bool:
    """A token rather than a word, a name or a path: mixes digits, cases or symbols, or is long."""
    value = value.strip("\"'")
    if len(value) < 8 or not _real(value) or "://" in value:
        return False
    if _looks_like_path(value):
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

_PASSWORD_KEYS = ("password", "passwd", "passphrase", "pwd")
_SECRET_KEYS = (
    "secret", "token", "apikey", "api_key", "api-key", "accesskey", "access_key", "access-key", "privatekey",
    "private_key", "private-key", "signingkey", "signing_key", "signing-key", "subscriptionkey", "subscription_key",
    "subscription-key", "client-key-data", "client_key_data", "credential", "_pat", "auth",
)  # fmt: skip

_RULES: tuple[_Rule, ...] = (
    _Rule(
        "authorization-header",
        ("authorization",),
        (
            r"(?i)[\"']?" + _SEP + r"[\"']?"
            r"(?:(?:bearer|basic|token|negotiate|ntlm|digest|sharedaccesssignature)[ \t]{1,4})?([^\s\"',;]{6,8192})"
        ),
        1,
        _random_looking,  # "may require authorization: server message" is prose
        keys=("authorization",),
    ),
    _Rule("bearer-token", ("bearer",), r"(?i)\bbearer[ \t]{1,4}([A-Za-z0-9._~+/=-]{16,8192})", 1),
    _Rule(  # the signature is optional: a log line or a chat message may cut the token short
        "jwt", ("eyj",), r"\beyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}(?:\.[A-Za-z0-9_-]{0,4096})?"
    ),
    _Rule(
        "docker-config-auth",  # .dockerconfigjson / .dockercfg values are base64 of the whole config
        ("dockerconfigjson", "dockercfg", "eyjhdxrocyi6"),
        (
            r"(?i)(?:\.docker(?:configjson|cfg)[\"']?[ \t]{0,4}:[ \t]{0,4}[\"']?([A-Za-z0-9+/=]{16,16384})"
            r"|\b(eyJhdXRocyI6[A-Za-z0-9+/=]{8,16384}))"
        ),
    ),
    _Rule(
        "password-stdin",  # echo -n "pw" | docker login --password-stdin, and here-strings
        ("echo", "printf", "write-output", "<<<"),
        (
            r"(?i)(?:\b(?:echo|printf|write-output)(?:[ \t]{1,4}-[neE]{1,3}){0,3}(?:[ \t]{1,4}[\"']%s(?:\\n)?[\"'])?"
            r"[ \t]{1,4}" + _VALUE + r"[ \t]{0,4}\|[^\n|]{0,200}?(?:login|password-stdin|passwd|chpasswd)"
            r"|password-stdin" + _gap_before(r"password-stdin", r"[^\n]", 80) + r"<<<[ \t]{0,4}" + _VALUE + r")"
        ),
        0,
        _real,
        also=("login", "passwd", "password-stdin"),
    ),
    _Rule(
        "password-stdin",  # a heredoc: ``login --password-stdin <<EOF``, its first line is the password; one
        ("<<",),  # attempt per ``password-stdin``, never a ``<<<`` here-string, no backtracking (possessive)
        (r"password-stdin[^\n<]{0,80}+<<(?!<)" + _HEREDOC + r"[ \t]{0,4}+\r?\n[ \t]{0,8}(\S[^\n]{0,511})"),
        1,
        _real,
        also=("password-stdin",),
    ),
    _Rule(
        "password-flag",  # -p after a login command on the same line (elsewhere -p is a port or a path)
        ("login", "sshpass"),
        # -p VALUE, -p=VALUE, -p"VALUE", and -pVALUE attached (lowercase -p only; a word or a number, such
        # as a later ``ssh -p2222`` on an sshpass line, is no password)
        (
            r"(?i)\b(?:login|sshpass)\b" + _gap_before(r"\b(?:login|sshpass)\b", r"[^\n]", 300)
            + r"[ \t]-p(?:[ =]|(?=[\"'])|" + _ATTACHED + ")" + _VALUE
        ),
        1,
        _real,
        also=(" -p", "\t-p"),
    ),
    _Rule(
        "password-securestring",  # PowerShell: ConvertTo-SecureString "pw" -AsPlainText -Force
        ("convertto-securestring",),
        (
            r"(?i)ConvertTo-SecureString(?:[ \t]{1,4}-(?:AsPlainText|Force)\b){0,2}[ \t]{1,4}(?:-String[ \t]{1,4})?"
            r"(\"[^\"\n]{1,512}\"|'[^'\n]{1,512}'|[^\s\"'$(-][^\s\"']{0,511})"
        ),
        1,
        _real,
    ),
    _Rule(
        "password-option",  # --password X, --docker-password=X, --http-password=X, -Password X
        ("-password", "-passwd"),
        # "WARNING! Using --password via the CLI is insecure" is Docker's own warning, not a password
        (r"(?i)(?:^|[ \t])-{1,2}(?:[a-z]{1,12}-)?(?:password|passwd)(?:[ =]|(?=[\"']))(?!via the )" + _VALUE),
        1,
        _real,
    ),
    _Rule(
        "registry-credential",  # az acr credential show / token create: {"name": "password1", "value": "..."}
        ('"value"',),
        (
            r"(?i)(?:\"name\"[ \t]{0,4}:[ \t]{0,4}\"password[12]?\"[ \t]{0,4},[ \t\r\n]{0,40}"
            r"|password\"[ \t]{0,4}:[ \t]{0,4}\{[ \t\r\n]{0,40})"
            r"\"value\"[ \t]{0,4}:[ \t]{0,4}\"([^\"\n]{1,512})\"?"
        ),
        1,
        _real,
        also=("password",),
    ),
    _Rule(
        "secret-value",  # az … keys list / credential answers: "value": "<long random string>"
        ('"value"',),
        r"(?i)\"value\"[ \t]{0,4}:[ \t]{0,4}\"([^\"\s]{20,512})",
        1,
        _random_looking,
    ),
    _Rule(
        "password-field",  # password: x, "passwd": "x", Password=x; ACR_PASSWORD=x, "adminPassword": "x"
        _PASSWORD_KEYS,
        (r"s?[\"']?" + _SEP + _VALUE),
        1,
        _password,
        keys=_PASSWORD_KEYS,
    ),
    _Rule("password-field", ("pass:",), r"(?i)\bpass:([^\s\"']{1,512})", 1, _real),  # openssl -passin pass:x
    _Rule(
        "secret-setting",  # <password>x</password>, <add key="ClearTextPassword" value="x" />
        ("<pass", "<secret", "<token", "<privatekey", "<apikey", "password\"", "secret\"", "token\"", "apikey\""),
        (
            r"(?i)(?:<(password|passphrase|secret|token|privateKey|apiKey)>([^<\n]{1,512})</\1>"
            r"|key=\"[A-Za-z0-9_.-]{0,40}(?:password|secret|token|apikey)\"[ \t]{1,4}value=\"([^\"\n]{1,512})\")"
        ),
    ),
    _Rule(
        "client-secret",  # client_secret=x, "aadClientSecret": "x", SLACK_SIGNING_SECRET=x (any value of 8+)
        ("secret",),
        (r"s?" + _KEY_SEP + r"[\"']?([^\s\"',;&]{8,512})"),
        1,
        _real,
        keys=("secret",),
    ),
    _Rule("client-secret", ("--client-secret",), r"--client-secret[ =][\"']?([^\s\"',;]{8,512})", 1, _real),
    _Rule(
        "token-field",  # "accessToken": "...", refresh_token=..., identitytoken
        ("token",),
        (r"[\"']?" + _SEP + r"[\"']?([A-Za-z0-9._~+/=%-]{20,8192})"),  # % : URL-encoded tokens
        1,
        keys=("token",),
    ),
    _Rule(
        "secret-setting",  # GITHUB_TOKEN=x, DD_API_KEY=x, _authToken=x, "auth": x (values that look random)
        _SECRET_KEYS,
        (r"s?" + _KEY_SEP + r"[\"']?([^\s\"',;&<>]{1,8192})"),
        1,
        _random_looking,
        keys=_SECRET_KEYS,
    ),
    _Rule(
        "docker-config-auth",  # ~/.docker/config.json: "auth": "<base64 user:password>"
        ('"auth"',),
        r'(?i)"auth"[ \t]{0,4}:[ \t]{0,4}"([A-Za-z0-9+/=]{8,2048})"',
        1,
    ),
    _Rule(
        "curl-user",  # curl -u user:pw, --user, --proxy-user, skopeo --creds/--src-creds/--dest-creds
        ("-u", "--user", "--proxy-user", "creds"),
        (
            r"(?:^|[ \t])(?:-u|-U|--user|--proxy-user|--(?:src-|dest-|registry-)?creds)[ =][\"']?[^\s:\"']{1,128}:([^\s\"']{1,256})"
        ),
        1,
        _real,
    ),
    _Rule("sas-signature", ("sig=",), r"(?i)(?<=[?&])sig=([A-Za-z0-9%+/=_-]{8,512})", 1),
    _Rule(
        "signed-url",
        ("signature=", "code="),
        r"(?i)(?<=[?&])(?:(?:X-Amz-Signature|Signature)=([A-Za-z0-9%+/=_~.-]{8,2048})|code=([A-Za-z0-9%+/=_~.-]{16,2048}))",
        0,
        _real,
    ),
    _Rule(
        "connection-string",
        ("accountkey=", "sharedaccesskey="),
        r"(?i)\b(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/=]{8,512})",
        1,
    ),
    _Rule("slack-token", ("xox",), r"\bxox[abposre]-[A-Za-z0-9-]{8,256}"),
    _Rule("slack-app-token", ("xapp-",), r"\bxapp-[A-Za-z0-9-]{8,256}"),
    _Rule(
        "slack-webhook",
        ("hooks.slack.com",),
        r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{0,60}/([A-Za-z0-9]{16,64})",
        1,
    ),
    _Rule(
        "github-token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{30,255})",
    ),
    _Rule(
        "gitlab-token",
        ("glpat-", "glrt-", "gldt-", "glptt-", "glcbt-", "gloas-", "glsoat-"),
        r"\bgl(?:pat|rt|dt|ptt|cbt|oas|soat)-[A-Za-z0-9_-]{20,64}",
    ),
    _Rule("npm-token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    _Rule("aws-key", ("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    _Rule("google-api-key", ("aiza",), r"\bAIza[0-9A-Za-z_-]{35}"),
    _Rule(
        "api-key",
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "sk-", "sg."),
        r"\b(?:[sr]k_(?:live|test)_[0-9A-Za-z]{16,247}|sk-[A-Za-z0-9_-]{20,256}|SG\.[\w-]{16,32}\.[\w-]{16,64})",
    ),
    _Rule("client-secret", ("q~",), r"(?<![A-Za-z0-9_.~-])[A-Za-z0-9_.~-]{3}\dQ~[A-Za-z0-9_.~-]{20,40}"),
    _Rule(
        "storage-key",  # an 88-character base64 account key on its own (az storage account keys list)
        ("==",),
        r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])",
    ),
    _Rule(  # a Cookie header, on its own line or inside curl -H "...": name=value pairs
        "cookie",
        ("cookie",),
        r"(?i)(?<![\w-])(?:set-)?cookie[ \t]{0,4}:[ \t]{0,4}([^\s=;\"']{1,128}=[^\n\"']{1,4096})",
        1,
    ),
    _Rule(
        "password-label",  # パスワード：x, パスワードは x です, アクセストークン: x (the value is ASCII)
        ("パスワード", "ﾊﾟｽﾜｰﾄﾞ", "暗証番号", "シークレット", "トークン", "アクセスキー", "秘密鍵"),
        (
            r"(?:パスワード|ﾊﾟｽﾜｰﾄﾞ|暗証番号|シークレット|トークン|アクセスキー|秘密鍵)(?:キー|値)?[ \t　]{0,4}"
            r"(?:(?:は|[:：=＝])[ \t　]{0,4}[\"'「]?|[\"'「])([!-~]{4,512}?)(?=[\"'」]|[\s　]|[^!-~]|$)"
        ),
        1,
        _real,
    ),
    _Rule(
        # scheme://user:password@host; the user may hold an '@' (jdoe@contoso.com). The password is the gap,
        # which stops at another ``scheme://user:``: a password holding one is masked from there on only
        # (no real one does: a URL's user part never holds '/').
        "basic-auth-url",
        ("://",),
        (
            r"(?i)" + _URL_USERINFO + r"(" + _gap_before(_URL_USERINFO, r"[^\s\"'<>]", 256, 1) + r")@"
            + _URL_HOST_AHEAD
        ),
        1,
        also=("@",),
    ),
    _Rule(
        "url-token",  # https://<token>@github.com: a user part that is a token, not a name
        ("://",),
        (r"(?i)" + _URL_SCHEME + r"([A-Za-z0-9_.~%-]{16,256})@" + _URL_HOST_AHEAD),
        1,
        lambda value: _random_looking(value) and any(c.isdigit() for c in value),
        also=("@",),
    ),
)
#: Each rule's gates as sets, for a quick intersection with the gates present in a text.
_RULE_GATES = tuple((rule, frozenset(rule.triggers), frozenset(rule.also)) for rule in _RULES)
#: gate -> positions of the rules it triggers: a text touches only the rules its gates can start.
_RULES_BY_GATE: dict[str, tuple[int, ...]] = {}
for _position, (_rule, _triggers, _also) in enumerate(_RULE_GATES):
    for _gate in _triggers:
        _RULES_BY_GATE[_gate] = (*_RULES_BY_GATE.get(_gate, ()), _position)


def _gate_tree(gates: set[str], roots: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Group gate strings under a root they contain: when the root is absent, none of them is tested."""
    tree: dict[str, list[str]] = {}
    for gate in sorted(gates):
        root = next((r for r in roots if r in gate), gate)
        tree.setdefault(root, [])
        if gate != root:
            tree[root].append(gate)
    return tuple((root, tuple(children)) for root, children in tree.items())


#: Every gate string, tested once per text, under roots that most of them contain.
_GATE_TREE = _gate_tree(
    {g for rule in _RULES for g in (*rule.triggers, *rule.also)},
    # Specific roots first: a gate goes under the first root it contains.
    ("pass", "secret", "token", "auth", "api", "access", "private", "signing", "subscription", "client", "key", "gl",
     "-p", "-u", "sk", "=", "_", "<", '"', ".", ":", "~", "-"),
)  # fmt: skip


_ASCII_GATE_TREE = tuple((root, children) for root, children in _GATE_TREE if root.isascii())
#: The characters of each gate: a gate is searched for only when all of them are in the text.
#: ``c in text`` for one character is a ``memchr`` (a few µs per MB), a search for a longer
#: string is 30-100 times slower: on a paste made of few characters (a repeated line, a
#: hostile input) most gates are ruled out by their characters alone.
_GATE_CHARS = {gate: frozenset(gate) for root, children in _GATE_TREE for gate in (root, *children)}
_ALL_GATE_CHARS = tuple(sorted(set().union(*_GATE_CHARS.values())))


#: Below this length the gates are found in one Aho-Corasick pass (a few µs for a paste); above
#: it, by the character pre-check and substring tests below, whose cost does not grow with the
#: number of occurrences (a megabyte of ``-`` holds a million matches of the gate ``-``).
_AUTOMATON_LIMIT = 20_000
_GATE_SCANNER = KeywordScanner(_GATE_CHARS)


def _present_gates(lowered: str) -> set[str]:
    """Every gate string that occurs in ``lowered``."""
    if len(lowered) <= _AUTOMATON_LIMIT:
        return _GATE_SCANNER.scan(lowered)
    return _present_gates_by_substring(lowered)


def _present_gates_by_substring(lowered: str) -> set[str]:
    present: set[str] = set()
    add = present.add
    chars = {c for c in _ALL_GATE_CHARS if c in lowered}
    for root, children in _ASCII_GATE_TREE if lowered.isascii() else _GATE_TREE:
        if _GATE_CHARS[root] <= chars and root in lowered:
            add(root)  # a root that is no rule's gate is harmless in the set
            for child in children:
                if _GATE_CHARS[child] <= chars and child in lowered:
                    add(child)
    return present


_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----")
#: What follows a header when the paste was cut before the END line: base64 lines, PEM headers.
#: The last, unfinished line (a paste cut mid-key, or a key in a JSON string) is masked too when the
#: base64 run ends there: at the end, before a quote, a backslash or a space. Followed by anything
#: else (``Authorization: NTLM``, ``password：``, ``password=ab%9``) it is the start of the next
#: line's own secret, and swallowing it would leave that secret without the words that mark it.
_PEM_BODY = re.compile(
    r"(?:(?:[A-Za-z0-9+/=]{1,100}|Proc-Type:[^\n\\]{0,80}|DEK-Info:[^\n\\]{0,120})?[ \t]{0,4}(?:\r?\n|\\n)){0,300}"
    r"(?:[A-Za-z0-9+/=]{1,100}(?=$|[\s\"'`\\]))?"
)
_PEM_REACH = 16_384
#: A header and the body after it (no END line follows; the body may run past ``_PEM_REACH``).
_PEM_UNENDED = re.compile(f"({_PEM_BEGIN.pattern}){_PEM_BODY.pattern}")
_CREDENTIAL_TABLE = re.compile(
    r"(?im)^[ \t]{0,8}USERNAME[ \t]{1,40}PASSWORD[ \t]{1,80}PASSWORD2[ \t]{0,8}\r?\n(?:[ \t-]{0,400}\r?\n)?"
    r"[ \t]{0,8}\S{1,128}[ \t]{1,80}(?!USERNAME)(\S{4,512})(?:[ \t]{1,80}(\S{4,512}))?"
)


def redact(text: str) -> tuple[str, list[str]]:
    """Return the text with secrets masked, and the sorted kinds of secret found."""
    found = redact_found(text)
    return found.text, found.kinds


def redact_found(text: str) -> Redaction:
    """Mask every secret; return the text, the kinds found and the values masked."""
    lowered = lower_same_length(text)
    kinds: set[str] = set()
    values: list[str] = []
    if "-----begin" in lowered:
        replaced = _mask_private_keys(text, values)
        if replaced != text:
            kinds.add("private-key")
            text, lowered = replaced, lower_same_length(replaced)
    if "password2" in lowered:
        replaced = _mask_credential_table(text, values)
        if replaced != text:
            kinds.add("registry-credential")
            text, lowered = replaced, lower_same_length(replaced)
    present = _present_gates(lowered)
    if present:
        candidates: set[int] = set()
        for gate in present:
            positions = _RULES_BY_GATE.get(gate)
            if positions:
                candidates.update(positions)
        for position in sorted(candidates):  # the rules' own order
            rule, _, also = _RULE_GATES[position]
            if also and also.isdisjoint(present):
                continue
            replaced = _apply_keyed(rule, text, lowered, present, values) if rule.keys else _apply(rule, text, values)
            if replaced != text:
                kinds.add(rule.kind)
                text = replaced
                lowered = lower_same_length(text)
    if values:
        text = mask_values(text, values)
    return Redaction(text, sorted(kinds), values)


def lower_same_length(text: str) -> str:
    """Lowercase with the same length, so positions found in it are positions in ``text``."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)  # e.g. "İ" lowercases to two chars


def mask_values(text: str, values: list[str]) -> str:
    """Mask every occurrence of secret values already found (a password typed twice, echoed back)."""
    for value in sorted(set(values), key=len, reverse=True):
        if worth_remasking(value) and value in text:
            text = text.replace(value, MASK)
    return text


def _remember(values: list[str], value: str) -> None:
    value = value.strip().strip("\"'")
    if len(value) >= 6 and MASK not in value and len(values) < 200 and value not in values:
        values.append(value)  # a value repeated must not use up the room for the others


def _secret_group(rule: _Rule, match: re.Match[str]) -> int:
    return rule.group or next((i for i in range(match.re.groups, 0, -1) if match.group(i)), 0)


def _accepted(rule: _Rule, value: str | None) -> bool:
    if value is None:
        return False
    if MASK in value:  # a value already masked is left alone; one that runs on past a mask is masked whole
        rest = value.replace(MASK, "")
        if len(rest.strip(" \t\"';,")) < 4:
            return False
        value = rest
    return rule.accept is None or rule.accept(value.strip("\"'"))


def _apply(rule: _Rule, text: str, values: list[str]) -> str:
    """``rule.regex.sub``, masking the secret group of every accepted match.

    A paste (or a log line) may repeat one match tens of thousands of times: the
    replacement of a match text already seen is reused when its secret sits at the same
    place, so a repeat costs a dictionary look-up rather than the tests of the value.
    """
    seen: dict[str, tuple[int, int, int, str]] = {}

    def substitute(match: re.Match[str]) -> str:
        whole = match.group(0)
        known = seen.get(whole)
        offset = match.start()
        if known is not None:
            group, start, end, replacement = known
            if match.start(group) - offset == start and match.end(group) - offset == end:
                return replacement
        group = _secret_group(rule, match)
        replacement = _replacement(rule, match, group, values)
        if len(seen) < _MAX_SEEN:
            seen[whole] = (group, match.start(group) - offset, match.end(group) - offset, replacement)
        return replacement

    return rule.regex.sub(substitute, text)


_MAX_SEEN = 4096


def _replacement(rule: _Rule, match: re.Match[str], group: int, values: list[str]) -> str:
    """The match with its secret group masked, or unchanged when the value is turned down."""
    value = match.group(group)
    whole = match.group(0)
    if not _accepted(rule, value):
        return whole
    if group == 0:
        _remember(values, whole)
        return MASK
    _remember(values, value)
    start, end = match.span(group)
    offset = match.start(0)
    return whole[: start - offset] + MASK + whole[end - offset :]


def _apply_keyed(rule: _Rule, text: str, lowered: str, present: set[str], values: list[str]) -> str:
    """Match ``rule.regex`` right after each occurrence of each key (found with ``str.find``).

    After a match, accepted or not, the search goes on after its end, as ``re.sub`` does: a
    value that was turned down is never rescanned for keys inside it, which keeps this linear.
    """
    spans: list[tuple[int, int]] = []
    for key in rule.keys:
        if key not in present and key not in lowered:
            continue
        start = 0
        for _ in range(_MAX_KEY_HITS):
            index = lowered.find(key, start)
            if index < 0:
                break
            match = rule.regex.match(text, index + len(key))
            if match is None:
                start = index + len(key)
                continue
            value = match.group(rule.group)
            if _accepted(rule, value):
                _remember(values, value)
                spans.append(match.span(rule.group))
            start = max(match.end(), index + len(key))
    if not spans:
        return text
    parts: list[str] = []
    position = 0
    for begin, end in sorted(spans):
        if begin < position:
            continue  # overlaps a span already masked (two keys in one name)
        parts += [text[position:begin], MASK]
        position = end
    parts.append(text[position:])
    return "".join(parts)


_MAX_KEY_HITS = 500


def _mask_private_keys(text: str, values: list[str]) -> str:
    """Mask PEM private keys with ``str.find``: linear however many headers a paste repeats.

    A block runs from its BEGIN line to the next END line; when the END line was not pasted,
    the base64 body that follows the header is masked. The next END position is searched
    once and reused for every header before it, so repeated headers never rescan the text.
    Once no END line follows, the headers left are masked with their bodies in one regex pass
    (a Python turn per header costs ~2 µs: 70 ms for a megabyte of headers).
    """
    lowered = lower_same_length(text)
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
        if next_end == -1:
            parts += [text[position:begin], _mask_unended_keys(text[begin:], values)]
            return "".join(parts)
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


def _mask_unended_keys(text: str, values: list[str]) -> str:
    """Every PEM header of ``text`` (which has no END line) masked with the base64 body after it."""
    seen: set[str] = set()

    def substitute(match: re.Match[str]) -> str:
        block = match.group(0)[match.end(1) - match.start() :]
        if block not in seen and len(seen) < _MAX_SEEN:
            seen.add(block)
            for line in block.replace("\\n", "\n").split("\n"):
                if len(line.strip()) >= 16:
                    _remember(values, line.strip())
        return MASK

    return _PEM_UNENDED.sub(substitute, text)


def _mask_credential_table(text: str, values: list[str]) -> str:
    """``az acr credential show -o table``: the row under USERNAME PASSWORD PASSWORD2 holds two passwords."""

    seen: dict[str, tuple[tuple[int, int], tuple[int, int], str]] = {}

    def substitute(match: re.Match[str]) -> str:
        whole, offset = match.group(0), match.start(0)
        spans = (match.span(1), match.span(2))
        known = seen.get(whole)
        if known is not None and known[:2] == tuple((a - offset, b - offset) for a, b in spans):
            return known[2]  # the same row again (a repeated paste): the same replacement
        replaced = whole
        for group in (2, 1):  # right to left, so earlier offsets stay valid
            if match.group(group) and _real(match.group(group)):
                _remember(values, match.group(group))
                start, end = match.span(group)
                replaced = replaced[: start - offset] + MASK + replaced[end - offset :]
        if len(seen) < _MAX_SEEN:
            relative = tuple((a - offset, b - offset) for a, b in spans)
            seen[whole] = (relative[0], relative[1], replaced)
        return replaced

    return _CREDENTIAL_TABLE.sub(substitute, text)


#: Substrings found in (or next to) nearly every secret shape: the whole of a huge paste is
#: searched for these only, each search being one pass at C speed.
_ROOTS = (
    "pass", "pwd", "secret", "token", "key", "auth", "bearer", "login", "credential", "eyj", "sig=", "://",
    "-----begin", "xox", "パスワード",
)  # fmt: skip
_ROOT_HITS = 3  # windows per root from each end of the paste
_REACH_BEFORE, _REACH_AFTER = 400, 1_200


def secret_kinds(text: str, lowered: str | None = None) -> list[str]:
    """Kinds of secret anywhere in a (possibly huge) paste, without redacting all of it.

    The engine reads only the focused part of a huge paste, and nothing outside it reaches
    any output; but the author must be told about a secret wherever it sits in what they
    pasted. The paste is searched for a few roots (``_ROOTS``), the first and last few
    occurrences of each are cut out with their surroundings, and every rule runs on those
    windows only. Cost: one ``str.find`` pass per root plus at most ~60 KB of redaction,
    whatever the paste; a secret whose root occurs many times in the middle of a huge paste
    may go unreported (it is still never echoed).
    """
    lowered = lower_same_length(text) if lowered is None else lowered
    spans: list[tuple[int, int]] = []
    for root in _ROOTS:
        index = lowered.find(root)
        if index < 0:
            continue
        hits = [index]
        for _ in range(_ROOT_HITS - 1):
            index = lowered.find(root, index + len(root))
            if index < 0:
                break
            hits.append(index)
        end = len(lowered)
        for _ in range(_ROOT_HITS):
            index = lowered.rfind(root, hits[-1] + 1, end)
            if index < 0:
                break
            hits.append(index)
            end = index
        spans += [(max(0, h - _REACH_BEFORE), h + _REACH_AFTER) for h in hits]
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    found: set[str] = set()
    for start, stop in merged:
        found.update(redact_found(text[start:stop]).kinds)
    return sorted(found)


def redact_text(text: str) -> str:
    """Convenience for loggers: the redacted text only."""
    return redact_found(text).text
