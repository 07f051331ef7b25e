"""The CLI contracts: readable text, one JSON object, the JSONL stream, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args], input=data, capture_output=True, cwd=ROOT, timeout=120, check=False
    )


def test_diagnose_text_argument_prints_readable_diagnosis() -> None:
    out = run("diagnose", "Error response from daemon: Get https://myreg.azurecr.io/v2/: proxyconnect tcp: EOF")
    assert out.returncode == 0
    text = out.stdout.decode()
    assert "client-proxy" in text and "myreg.azurecr.io" in text
    assert "nslookup myreg.azurecr.io" in text  # the no-install self check


def test_diagnose_stdin_json() -> None:
    out = run(
        "diagnose", "--json", stdin="denied: client with IP '198.51.100.9' is not allowed access (prodreg.azurecr.io)"
    )
    assert out.returncode == 0
    data = json.loads(out.stdout)
    assert data["cause"] == "registry-public-access"
    assert data["reply"] is True
    assert data["facts"]["client_ip"] == "198.51.100.9"
    assert any("az acr network-rule add --name prodreg --ip-address 198.51.100.9" in step for step in data["fix"])
    assert data["causes"][0]["id"] == "registry-public-access"


def test_diagnose_dash_reads_stdin_and_japanese() -> None:
    out = run(
        "diagnose",
        "-",
        "--lang",
        "ja",
        stdin="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
    )
    assert out.returncode == 0
    assert "Docker デーモン" in out.stdout.decode()


def test_jsonl_contract_and_malformed_lines() -> None:
    lines = [
        json.dumps({"id": "a", "text": "dial tcp: lookup x.azurecr.io on 10.0.0.2:53: server misbehaving"}),
        "this is not json",
        json.dumps({"id": 7, "text": "good morning team"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "b", "text": None}),
        "",
        json.dumps({"id": "c", "text": "x" * 50_000}),
    ]
    out = run("diagnose", "--jsonl", stdin="\n".join(lines) + "\n")
    assert out.returncode == 0
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert len(rows) == 6
    first = rows[0]
    assert set(first) >= {"id", "cause", "confidence", "reply", "causes", "facts", "fix"}
    assert first["id"] == "a" and first["cause"] == "client-dns" and first["reply"] is True
    assert all(set(c) == {"id", "confidence"} for c in first["causes"])
    assert "error" in rows[1] and rows[1]["line"] == 2
    assert rows[2]["id"] == 7 and rows[2]["cause"] == "unrelated" and rows[2]["reply"] is False
    assert "error" in rows[3] and "error" in rows[4] and rows[4]["id"] == "b"
    assert rows[5]["id"] == "c" and rows[5]["cause"] == "unrelated"


def test_jsonl_invalid_utf8_is_answered() -> None:
    out = run("diagnose", "--jsonl", stdin=b'{"id": 1, "text": "caf\xff"}\n\xff\xfe\n')
    assert out.returncode == 0
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert rows[0]["id"] == 1 and "cause" in rows[0]
    assert "error" in rows[1]


@pytest.mark.parametrize(
    "args",
    [
        ("diagnose", "--lang", "fr", "x"),
        ("diagnose", "--json", "--jsonl"),
        ("diagnose", "--jsonl", "some text"),
        ("nosuchcommand",),
        (),
    ],
)
def test_bad_usage_exits_2_with_a_message(args: tuple[str, ...]) -> None:
    out = run(*args, stdin="")
    assert out.returncode == 2
    assert out.stderr.strip()
    assert b"Traceback" not in out.stderr


def test_oversized_input_is_refused_clearly() -> None:
    out = run("diagnose", stdin="a" * 1_200_000)
    assert out.returncode == 2
    assert b"larger than" in out.stderr


def test_secrets_are_not_echoed() -> None:
    out = run(
        "diagnose",
        "--json",
        stdin="docker login myreg.azurecr.io -u me -p Sup3rS3cret!!\nunauthorized: authentication required",
    )
    assert b"Sup3rS3cret" not in out.stdout
    assert json.loads(out.stdout)["secret_redacted"] is True


def test_invalid_setting_is_named_without_echoing_its_value() -> None:
    env = {**__import__("os").environ, "ACRCHECK_PROXY": "user:S3cretPw@proxy.corp:8080"}
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "check", "myregistry"],
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert b"invalid setting proxy" in out.stderr
    assert b"S3cretPw" not in out.stderr + out.stdout and b"Traceback" not in out.stderr


def test_jsonl_survives_lone_surrogates() -> None:
    lines = '{"id": 1, "text": "proxyconnect tcp: dial tcp \\ud800evil:3128: EOF"}\n{"id": "x\\ud800", "text": "hi"}\n{"id": 3, "text": "ok"}\n'
    out = run("diagnose", "--jsonl", stdin=lines)
    assert out.returncode == 0
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r.get("id") for r in rows][::2] == [1, 3] and len(rows) == 3
