"""Hostile input never costs seconds: a guard against quadratic scans and regex backtracking.

This is not the speed target (≤ 50 ms for any input up to 1 MB, measured and printed by
``benchmarks/adversarial.py``): the bound here is 10x looser than that target so that a
loaded test machine cannot make it fail, while the bugs it guards against cost seconds
(62 KB of repeated private-key headers took about 3 s). Time is CPU time of this process.
"""

from __future__ import annotations

import time

import pytest

from bot.diagnose import diagnose
from bot.engine.redact import redact, redact_found, secret_kinds
from handlers import logsafe

BOUND_S = 0.5

CASES = {
    "private-key-headers": "-----BEGIN RSA PRIVATE KEY-----\n",
    "private-key-headers-no-newline": "-----BEGIN PRIVATE KEY-----",
    "credential-table-headers": "USERNAME PASSWORD PASSWORD2\n",
    "login-dash-p": "docker login -p x ",
    "keyed-settings": "key=://",
    "token-colons": "token:",
    "echo-pipes": "echo x | ",
    "url-userinfo": "https://a:b@",
    "url-at": "http://a@",
    "sshpass-login-p-word": "sshpass login -px ",
    "here-string-values": "password-stdin <<< x ",
    "docker-login-p-attached": "docker login -pAb1 ",
    "escaped-newlines": "\\n",
    "az-acr-without-names": "az acr login -n ",
}


def _cpu(call: object) -> float:
    start = time.process_time()
    call()  # type: ignore[operator]
    return time.process_time() - start


@pytest.mark.parametrize("size", [62_000, 1_000_000])
@pytest.mark.parametrize("name", list(CASES))
def test_repeated_triggers_are_linear(name: str, size: int) -> None:
    text = (CASES[name] * (size // len(CASES[name]) + 1))[:size]
    diagnose("warm-up")
    assert _cpu(lambda: diagnose(text)) < BOUND_S
    assert _cpu(lambda: secret_kinds(text)) < BOUND_S


def test_redacting_a_62_kb_block_of_key_headers_is_linear() -> None:
    text = "-----BEGIN RSA PRIVATE KEY-----\n" * 2000
    elapsed = _cpu(lambda: redact(text))
    assert elapsed < BOUND_S
    out, kinds = redact(text)
    assert kinds == ["private-key"] and "BEGIN" not in out.replace("[REDACTED]", "")


@pytest.mark.parametrize("name", list(CASES))
def test_redacting_a_whole_megabyte_is_linear(name: str) -> None:
    """The log redactor redacts whole texts (a log line has no size limit), not the engine's focused part.

    Before the gaps stopped at the next head, 1 MB of ``sshpass login -px `` took ~0.7 s and
    of ``http://a@`` ~1.3 s to redact whole.
    """
    text = (CASES[name] * (1_000_000 // len(CASES[name]) + 1))[:1_000_000]
    assert _cpu(lambda: redact_found(text)) < BOUND_S
    assert _cpu(lambda: logsafe.redact(text)) < BOUND_S


def _signal_shapes() -> list[tuple[str, str]]:
    from bot.engine.knowledge import default_knowledge

    shapes = []
    for signal in default_knowledge().signals:
        if signal.pattern_source:
            for keyword in dict.fromkeys((*signal.any, *signal.all)):
                shapes.append((signal.id, keyword))
    return shapes


@pytest.mark.parametrize(("signal_id", "keyword"), _signal_shapes())
def test_every_signal_pattern_is_linear_on_its_own_repeated_keywords(signal_id: str, keyword: str) -> None:
    """A signal's regex runs only where one of its keywords is: 47 KB of that keyword (the engine
    reads all of a paste below ~50 KB) repeated back to back and spaced must not make it backtrack.

    ``docker-credential-[a-z.-]+`` followed by optional parts rescanned the rest of 47 KB of
    ``docker-credential-`` from every occurrence (quadratic) until its name was bounded.
    """
    from bot.engine.knowledge import default_knowledge

    pattern = default_knowledge().signal_by_id[signal_id].pattern
    assert pattern is not None
    for separator in ("", " "):
        seed = keyword + separator
        text = (seed * (47_000 // len(seed) + 1))[:47_000]
        assert _cpu(lambda text=text: list(pattern.finditer(text))) < BOUND_S, (signal_id, keyword)
