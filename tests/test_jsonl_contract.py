"""``acrcheck diagnose --jsonl``: exactly one strict-JSON answer line per non-blank input line.

Blank means JSON whitespace only (space, tab, CR). Characters that Python's ``str.strip`` or
``str.splitlines`` treat as whitespace or line breaks, but JSON does not, are ordinary content:
such a line is answered (with an error, since it is not JSON), and it never splits an answer.
Non-finite numbers (``NaN``, ``Infinity``, ``1e999``) are not JSON, so they are refused with a
clear error and never echoed.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli.main import main

#: Whitespace or line breaks to Python, but not to JSON.
PYTHON_ONLY_WHITESPACE = ["\x1c", "\x1d", "\x1e", "\x1f", "\x0b", "\x0c", "\x85", "\xa0", "\u2028", "\u2029", "\u3000"]


class _Stdin(io.TextIOWrapper):
    """A text stdin with a bytes ``buffer``, as the CLI reads it."""

    def isatty(self) -> bool:
        return False


def run_jsonl(data: bytes) -> list[str]:
    stdin = _Stdin(io.BytesIO(data), encoding="utf-8")
    stdout = io.StringIO()
    assert main(["diagnose", "--jsonl"], stdin=stdin, stdout=stdout) == 0
    out = stdout.getvalue()
    assert out.endswith("\n") or out == ""
    # The answer stream splits into lines on "\n" only, and also under str.splitlines().
    assert out.splitlines() == out.split("\n")[:-1]
    return out.split("\n")[:-1]


def strict(line: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"non-JSON constant {name} in {line!r}")

    return json.loads(line, parse_constant=refuse)


def nonblank(data: bytes) -> int:
    return sum(1 for raw in data.split(b"\n") if raw.strip(b" \t\r"))


@pytest.mark.parametrize("char", PYTHON_ONLY_WHITESPACE)
def test_a_line_of_python_only_whitespace_gets_one_error_line(char: str) -> None:
    data = json.dumps({"id": 1, "text": "hi"}) + "\n" + char * 3 + "\n" + json.dumps({"id": 2, "text": "x"}) + "\n"
    rows = [strict(line) for line in run_jsonl(data.encode())]
    assert len(rows) == 3
    assert rows[0]["id"] == 1 and rows[2]["id"] == 2
    assert rows[1]["line"] == 2 and "error" in rows[1]


@pytest.mark.parametrize("char", PYTHON_ONLY_WHITESPACE)
def test_python_only_whitespace_inside_text_is_content_and_never_splits_the_answer(char: str) -> None:
    text = f"dial tcp: lookup myreg.azurecr.io{char}on 10.0.0.2:53: no such host {char}"
    data = json.dumps({"id": f"a{char}b", "text": text}, ensure_ascii=False) + "\n"
    rows = [strict(line) for line in run_jsonl(data.encode())]
    assert len(rows) == 1
    assert rows[0]["id"] == f"a{char}b" and "cause" in rows[0]


@pytest.mark.parametrize(
    "line",
    [
        '{"id": NaN, "text": "x"}',
        '{"id": Infinity, "text": "x"}',
        '{"id": -Infinity, "text": "x"}',
        '{"id": 1e999, "text": "x"}',
        '{"id": -1e999, "text": "x"}',
        '{"id": [1, {"a": 1e400}], "text": "x"}',
        '{"id": 1, "text": "x", "extra": NaN}',
    ],
)
def test_non_finite_numbers_are_refused_and_never_echoed(line: str) -> None:
    rows = run_jsonl((line + "\n").encode())
    assert len(rows) == 1
    row = strict(rows[0])
    assert "error" in row and row["line"] == 1
    assert row["id"] is None or isinstance(row["id"], int | str)
    assert "not JSON" in row["error"] or "finite" in row["error"]


def test_large_finite_numbers_are_echoed_as_json() -> None:
    rows = [
        strict(r)
        for r in run_jsonl(b'{"id": 1e300, "text": "x"}\n{"id": 123456789012345678901234567890, "text": "y"}\n')
    ]
    assert rows[0]["id"] == 1e300 and math.isfinite(rows[0]["id"]) and "cause" in rows[0]
    assert rows[1]["id"] == 123456789012345678901234567890


def test_blank_lines_are_skipped_and_crlf_is_json_whitespace() -> None:
    data = b'\n   \n\t\r\n{"id": 1, "text": "hi"}\r\n\r\n'
    rows = [strict(r) for r in run_jsonl(data)]
    assert [r["id"] for r in rows] == [1]


_LINE_CHARS = st.characters(codec="utf-8", exclude_characters="\n")


@given(
    st.lists(
        st.one_of(
            st.text(_LINE_CHARS, max_size=60),
            st.builds(
                lambda i, t: json.dumps({"id": i, "text": t}, ensure_ascii=False),
                st.one_of(
                    st.none(),
                    st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(_LINE_CHARS, max_size=8),
                ),
                st.text(_LINE_CHARS, max_size=200),
            ),
            st.sampled_from(
                ['{"id": NaN}', '{"id": 1e999, "text": ""}', "[1, 2]", "{", '"x"', "null", "\x1c\x85\u2028"]
            ),
        ),
        max_size=8,
    )
)
@settings(max_examples=120, deadline=None)
def test_any_line_gets_exactly_one_strict_json_answer(lines: list[str]) -> None:
    data = "\n".join(lines).encode("utf-8", errors="surrogatepass") + b"\n"
    rows = run_jsonl(data)
    assert len(rows) == nonblank(data)
    for row in rows:
        assert isinstance(strict(row), dict)


def test_a_driver_that_waits_for_each_answer_gets_it_before_sending_the_next_line() -> None:
    """Answers are flushed before the process waits for input: one line in, its answer out, over a real pipe."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", "diagnose", "--jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=root,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for number, text in enumerate(["dial tcp: lookup myreg.azurecr.io: no such host", "", "proxyconnect tcp: EOF"]):
            proc.stdin.write((json.dumps({"id": number, "text": text}) + "\n").encode())
            proc.stdin.flush()  # the stdin pipe stays open: the process must answer without seeing EOF
            answer = strict(proc.stdout.readline().decode())
            assert answer["id"] == number
        proc.stdin.write(b'\n{"id": "batch-1", "text": "x"}\n{"id": "batch-2", "text": "y"}\n')
        proc.stdin.flush()
        assert [strict(proc.stdout.readline().decode())["id"] for _ in range(2)] == ["batch-1", "batch-2"]
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0


def test_a_line_longer_than_one_read_is_answered_whole() -> None:
    text = "x" * 200_000 + " dial tcp: lookup myreg.azurecr.io: no such host"
    data = (json.dumps({"id": "long", "text": text}) + "\n" + json.dumps({"id": "next", "text": "y"})).encode()
    rows = [strict(line) for line in run_jsonl(data)]
    assert [row["id"] for row in rows] == ["long", "next"]
    assert rows[0]["facts"]["login_server"] == "myreg.azurecr.io"
