"""Engine time on hostile input: the worst of many adversarial shapes, each up to 1 MB.

Every shape is a short seed repeated to a size: just under the size at which the engine
starts focusing a paste on its error lines (47 KB: all of it is read), and 1 MB (the largest
paste accepted). Seeds aim at each pattern's weak spot: repeated headers and triggers,
long runs of separators, nested quotes, long host names, long lines without newlines, many
IPs and hosts, Slack link openings, escapes. With ``--search`` (needs ``hypothesis``, a dev
dependency) a guided search then looks for slower mixes of the same tokens.

    python benchmarks/adversarial.py [--repeat 3] [--search 300] [--no-redaction]

Prints one line per shape (sorted, slowest first) and the worst case. Engine time is CPU time
of ``bot.diagnose.diagnose`` in this process, the knowledge base already loaded.

The engine reads only the focused part of a huge paste, but redaction also runs outside the
engine: every log record goes through ``handlers.logsafe.scrub_message`` (a line over 64 KB is
cut in the middle on whitespace, then the engine's ``redact_found`` and the log patterns run).
Every shape is therefore also timed through that path ("log line", all sizes), and the engine's
redactor alone on the shapes of at most 64 KB ("redact_found": no caller gives it more — a
paste is focused to ~50 KB first, a log line is bounded). CPU time, worst of the runs; the
target is the engine's, ≤ 50 ms per input; the rate per MB is printed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.diagnose import diagnose  # noqa: E402
from bot.engine.redact import redact_found  # noqa: E402
from handlers.logsafe import LOG_LINE_LIMIT, scrub_message  # noqa: E402

SIZES = (47_000, 1_000_000)

#: name -> seed repeated to each size.
SEEDS: dict[str, str] = {
    # repeated headers and triggers of the secret rules
    "pem-headers": "-----BEGIN RSA PRIVATE KEY-----\n",
    "pem-header-no-newline": "-----BEGIN PRIVATE KEY-----",
    "pem-footers": "-----END RSA PRIVATE KEY-----\n",
    "pem-begin-prefix": "-----BEGIN ",
    "pem-body-lines": "-----BEGIN PRIVATE KEY-----\n" + "QUJD" * 16 + "\n",
    "password-eq": "password=",
    "password-colon-space": "password: ",
    "docker-login-p": "docker login -p ",
    "login-words": "login ",
    "echo-pipes": "echo x | ",
    "here-strings": "--password-stdin <<< ",
    "here-string-values": "password-stdin <<< x ",
    "sshpass-login-p-word": "sshpass login -px ",
    "docker-login-p-attached": "docker login -pAb1 ",
    "authorization": "authorization:",
    "bearer": "bearer ",
    "token-colon": "token:",
    "secret-spaces": "secret ",
    "api-key-eq": "api_key=",
    "auth-colon": "auth: ",
    "sig-params": "&sig=aaaaaaaa",
    "json-value": '"value": "',
    "json-name-password": '{"name": "password", ',
    "credential-table": "USERNAME PASSWORD PASSWORD2\n",
    "eyj-dots": "eyJaaaaaaaaa.eyJ",
    "url-userinfo": "https://a:b@",
    "url-at": "http://a@",
    "scheme-colon": "http://a:",
    "proxy-vars": "HTTPS_PROXY=http://",
    "cookie-lines": "cookie: x\n",
    "japanese-password": "パスワード：",
    "equals-equals": "==",
    # long runs of separators and quotes
    "equals": "=",
    "colons": ":",
    "dashes": "-",
    "slashes": "/",
    "dots": ".",
    "at-signs": "@",
    "tabs": "\t",
    "spaces": " ",
    "newlines": "\n",
    "crlf": "\r\n",
    "double-quotes": '"',
    "nested-quotes": "'\"",
    "backticks": "`",
    "pipes": "|",
    "angle-brackets": "<",
    "box-drawing": "│",
    # hosts, IPs, long lines
    "long-host-labels": "a" * 63 + ".",
    "short-labels": "a.b.",
    "dash-labels": "x-",
    "acr-suffix": "azurecr.io",
    "acr-paths": "x.azurecr.io/",
    "many-acr-hosts": "reg.azurecr.io ",
    "many-ips": "10.0.0.1 ",
    "ips-with-ports": "1.1.1.1:443 ",
    "digits": "1",
    "digit-dots": "1.",
    "long-line-letters": "A",
    "base64-run": "QUJD",
    "v2-urls": "https://x/v2/",
    # extractor triggers
    "dial-tcp": "dial tcp ",
    "lookup": "lookup ",
    "lookup-on": "lookup x on ",
    "client-with-ip": "client with IP '",
    "proxyconnect": "proxyconnect tcp: dial tcp ",
    "status-code": "status code ",
    "http-version": "HTTP/1.1 ",
    "checkhealth-codes": "CONNECTIVITY_",
    "canipull": "Validating image pull permission: ",
    "pinging": "pinging container registry ",
    "image-refs": "image x.io/",
    "repository-paths": "x.azurecr.io/a-b.c__d/",
    "pull-access-denied": "pull access denied for a/b-",
    "v2-manifest-urls": "/v2/a/b/manifests/",
    "token-scopes": "scope=repository%3Aa%2F",
    "docker-pull": "docker pull ",
    "kubelet-unclosed-image-quote": 'Back-off pulling image "' + "a" * 390,
    "unable-to-find-image": "Unable to find image 'a/",
    "az-acr-name": "az acr login -n ",
    "registry-quote": "registry '",
    "kubectl-namespace": "kubectl -n ",
    "aks-nodes": "aks-",
    "pods": "pod/",
    "region": "region: ",
    "correlation": "correlation id: ",
    "error-words": "error ",
    # normaliser inputs
    "slack-link-openings": "<https://x|",
    "slack-http": "<http://",
    "ampersand-escapes": "&amp;",
    "ansi-escapes": "\x1b[",
    "unicode-escapes": "\\u0027",
    "escaped-newlines": "\\n",
    "quote-prefixes": "> ",
    "japanese": "エラー",
}


def _fact_dense(size: int) -> str:
    lines = []
    total = i = 0
    while total < size:
        line = (
            f'2024-05-01T10:00:{i % 60:02d}Z Error response from daemon: Get "https://contosoreg{i % 50}.azurecr.io/v2/": '
            f"dial tcp 20.{i % 250}.{(i // 250) % 250}.{i % 7}:443: i/o timeout\n"
        )
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines)[:size]


def _binary(size: int) -> str:
    return (bytes(range(256)).decode("latin-1") * (size // 256 + 1))[:size]


#: name -> generator of a text of (about) the given size, for shapes that are not one repeated seed.
GENERATED: dict[str, Callable[[int], str]] = {
    "fact-dense-dial-lines": _fact_dense,
    "binary": _binary,
    "nested-brackets": lambda size: "<" * (size // 2) + ">" * (size // 2),
    "authorization-newlines": lambda size: (("authorization:" + "\n" * 9000 + "x;") * (size // 9016 + 1))[:size],
    "one-huge-line-then-error": lambda size: "x" * (size - 80) + "\nError: dial tcp: lookup r.azurecr.io: no such host",
    "untagged-error-then-references": lambda size: (
        "Error response from daemon: pull access denied for a/b, repository does not exist\n"
        + ("x" * 259 + "/a/b:") * (size // 264 + 1)
    )[:size],
}


def shapes(sizes: tuple[int, ...] = SIZES) -> dict[str, str]:
    """Every adversarial input, named ``<shape>@<size>``."""
    out: dict[str, str] = {}
    for size in sizes:
        for name, seed in SEEDS.items():
            out[f"{name}@{size // 1000}KB"] = (seed * (size // len(seed) + 1))[:size]
        for name, make in GENERATED.items():
            out[f"{name}@{size // 1000}KB"] = make(size)
    return out


def worst_cpu_ms(work: Callable[[str], object], text: str, repeat: int = 3) -> float:
    """Worst CPU time of ``repeat`` runs of ``work(text)``, in ms."""
    worst = 0.0
    for _ in range(repeat):
        start = time.process_time()
        work(text)
        worst = max(worst, time.process_time() - start)
    return worst * 1000


def engine_ms(text: str, repeat: int = 3) -> float:
    """Worst CPU time of ``repeat`` diagnoses, in ms."""
    return worst_cpu_ms(diagnose, text, repeat)


def measure(repeat: int = 3) -> list[tuple[float, str, int]]:
    """(ms, name, size) for every shape, slowest first."""
    diagnose("warm-up: load the knowledge base before timing")
    diagnose("ウォームアップ: 日本語の貼り付けで使う部分も先に用意する")  # non-ASCII text: the full keyword trie
    rows = [(engine_ms(text, repeat), name, len(text)) for name, text in shapes().items()]
    return sorted(rows, reverse=True)


#: The redaction paths timed: a log record's (any size), and the engine's redactor alone (the
#: sizes it is ever given).
REDACTORS: dict[str, tuple[Callable[[str], object], int]] = {
    "log line": (scrub_message, 10**9),
    "redact_found": (redact_found, LOG_LINE_LIMIT),
}


def measure_redaction(repeat: int = 3) -> list[tuple[float, str, str, int]]:
    """(ms, path, shape, size) for every shape through every redaction path it can reach, slowest first."""
    rows = []
    for name, text in shapes().items():
        for label, (redactor, largest) in REDACTORS.items():
            if len(text) <= largest:
                rows.append((worst_cpu_ms(redactor, text, repeat), label, name, len(text)))
    return sorted(rows, reverse=True)


def search(examples: int) -> tuple[float, str] | None:
    """Hypothesis-guided search for slow mixes of the seeds (None when hypothesis is missing).

    One timing per example guides the search (noisy on a shared machine); the slowest
    candidates are then timed again and the median of five runs is reported.
    """
    try:
        from hypothesis import HealthCheck, Phase, given, settings, target
        from hypothesis import strategies as st
    except ImportError:
        return None
    tokens = sorted(set(SEEDS.values()))
    found: dict[str, float] = {}
    diagnose("warm-up")
    diagnose("ウォームアップ")

    @settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.generate, Phase.target],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(st.lists(st.sampled_from(tokens), min_size=1, max_size=12), st.integers(10_000, 1_000_000))
    def slow(parts: list[str], size: int) -> None:
        seed = "".join(parts)
        text = (seed * (size // len(seed) + 1))[:size]
        ms = engine_ms(text, 1)
        target(ms)
        found[text] = ms

    slow()
    retimed = []
    for text, _ in sorted(found.items(), key=lambda item: -item[1])[:5]:
        runs = sorted(engine_ms(text, 1) for _ in range(5))
        retimed.append((runs[2], text))
    ms, text = max(retimed)
    seed = text[: next((i for i in range(1, 400) if text.startswith(text[:i], i)), 60)]
    return ms, f"{seed[:60]!r} repeated to {len(text):,} chars"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per shape; the worst is kept")
    parser.add_argument("--search", type=int, default=0, help="hypothesis-guided examples (0: no search)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--no-redaction", action="store_true", help="skip the whole-text redaction timings")
    args = parser.parse_args()
    rows = measure(args.repeat)
    print(f"adversarial inputs: {len(rows)} shapes up to 1 MB, engine CPU time, worst of {args.repeat} runs:")
    for ms, name, size in rows[: args.top]:
        print(f"  {name:36} {size:>10,} chars {ms:8.1f} ms")
    ms, name, size = rows[0]
    over = sum(1 for row in rows if row[0] > 50)
    print(f"  worst: {name} {ms:.1f} ms; shapes over 50 ms: {over}/{len(rows)}")
    if not args.no_redaction:
        redacted = measure_redaction(args.repeat)
        print(f"redaction of the same shapes outside the engine (CPU ms, worst of {args.repeat} runs):")
        for ms, label, name, size in redacted[: args.top]:
            print(f"  {name:36} {label:12} {size:>10,} chars {ms:8.1f} ms  ({ms * 1_000_000 / size:6.1f} ms/MB)")
        ms, label, name, _ = redacted[0]
        over = sum(1 for row in redacted if row[0] > 50)
        print(f"  worst: {name} ({label}) {ms:.1f} ms; over 50 ms: {over}/{len(redacted)}")
    if args.search:
        found = search(args.search)
        if found is None:
            print("  guided search skipped: hypothesis is not installed (pip install hypothesis)")
        else:
            print(f"  guided search ({args.search} examples): worst {found[0]:.1f} ms for {found[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
