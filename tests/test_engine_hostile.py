"""Hostile and malformed input always gets an answer (speed is measured in benchmarks/)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.diagnose import diagnose

HOSTILE = {
    "empty": "",
    "whitespace": " \n\t\r\n",
    "one-char-mb": "a" * 1_000_000,
    "dots-mb": "a." * 500_000,
    "digits-dots": "1." * 400_000,
    "lookup-repeat": "lookup " * 150_000,
    "nested-brackets": "<" * 300_000 + ">" * 300_000,
    "slack-links": "<https://x|" * 100_000,
    "ampersands": "&amp;" * 200_000,
    "ansi": "\x1b[" * 300_000,
    "binary": bytes(range(256)).decode("latin-1") * 2000,
    "unicode": "日本語のエラー" * 100_000,
    "json-escapes": "\\u0027" * 150_000,
    "long-host": ("a" * 63 + ".") * 5000 + "azurecr.io",
    "ips": "10.0.0.1:443 " * 70_000,
    "redaction-bait": "password=" * 100_000,
    "authorization-newlines": ("authorization:" + "\n" * 9000 + "x;") * 110,
    "secret-spaces": ("secret" + " " * 9000 + "x;") * 110,
    "token-colons": "token:" * 150_000,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_answered(name: str) -> None:
    d = diagnose(HOSTILE[name])
    assert d.cause
    assert 0.0 <= d.confidence <= 1.0


@given(st.text(max_size=3000))
@settings(max_examples=300, deadline=None)
def test_any_text_is_answered(text: str) -> None:
    d = diagnose(text)
    assert d.causes
    assert d.cause in {c.id for c in d.causes}
