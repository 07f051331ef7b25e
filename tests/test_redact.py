"""Secrets never survive redaction, and ordinary error text is left alone."""

import pytest

from bot.diagnose import diagnose
from bot.engine.redact import MASK, redact
from bot.engine.render_text import diagnosis_json, render_text

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6ImFjciJ9.c2lnbmF0dXJlLXBhcnQtaGVyZQ"

CASES = [
    ("docker login myreg.azurecr.io -u myreg -p S3cr3t-Passw0rd!", "S3cr3t-Passw0rd!", "password-flag"),
    ("docker login --username x --password 'hunter2-long' myreg.azurecr.io", "hunter2-long", "password-flag"),
    ("Authorization: Bearer " + JWT, JWT, "authorization-header"),
    (
        "curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA==' https://myreg.azurecr.io/v2/",
        "dXNlcjpwYXNzd29yZA==",
        "authorization-header",
    ),
    ("refresh_token=" + JWT, JWT, "jwt"),
    (
        "GET https://acct.blob.core.windows.net/c/blob?sv=2020-08-04&sr=b&sig=AbCdEf1234567890%2Bxyz%3D&se=2030",
        "AbCdEf1234567890%2Bxyz%3D",
        "sas-signature",
    ),
    (
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=QUJDREVGR0hJSktMTU5PUA==;EndpointSuffix=core.windows.net",
        "QUJDREVGR0hJSktMTU5PUA==",
        "connection-string",
    ),
    ('{"aadClientSecret": "Abc~8Q~superSecretValue12345"}', "Abc~8Q~superSecretValue12345", "client-secret"),
    ("export AZURE_CLIENT_SECRET=Zz9~verysecretvalue000", "Zz9~verysecretvalue000", "client-secret"),
    ("password: correct-horse-battery", "correct-horse-battery", "password-field"),
    (
        "token xoxb-123456789012-123456789012-abcdefghijklmnop",
        "xoxb-123456789012-123456789012-abcdefghijklmnop",
        "slack-token",
    ),
    ("HTTPS_PROXY=http://alice:pr0xyPass@proxy.corp:3128", "pr0xyPass", "basic-auth-url"),
    ("HTTPS_PROXY=http://alice:ab/cd@ef@proxy.corp:3128", "ab/cd@ef", "basic-auth-url"),
    (
        '{"appId": "x", "password": "Zq8~sp-create-for-rbac-secret", "tenant": "t"}',
        "Zq8~sp-create-for-rbac-secret",
        "password-field",
    ),
    (
        '{"passwords": [{"name": "password", "value": "AcrAdminPwd+123/xyz="}]}',
        "AcrAdminPwd+123/xyz=",
        "registry-credential",
    ),
    (
        '{"auths": {"myreg.azurecr.io": {"auth": "bXlyZWc6c3VwZXJzZWNyZXQ="}}}',
        "bXlyZWc6c3VwZXJzZWNyZXQ=",
        "docker-config-auth",
    ),
    (
        "kubectl create secret docker-registry acr --docker-server=myreg.azurecr.io --docker-username=u --docker-password s3cr3tValue9",
        "s3cr3tValue9",
        "password-option",
    ),
    (
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=QUJDREVGR0hJSktMTU5P=",
        "QUJDREVGR0hJSktMTU5P=",
        "connection-string",
    ),
    ("curl -u admin:S3cretPass https://myreg.azurecr.io/v2/_catalog", "S3cretPass", "curl-user"),
    (
        "Proxy-Authorization: NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
        "TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
        "authorization-header",
    ),
    (
        "Authorization: Negotiate YIIJvwYGKwYBBQUCoIIJszCCCa+gMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgECAg",
        "YIIJvwYGKwYBBQUCoIIJszCCCa+gMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgECAg",
        "authorization-header",
    ),
]


@pytest.mark.parametrize(("text", "secret", "kind"), CASES)
def test_secret_is_masked_and_reported(text: str, secret: str, kind: str) -> None:
    out, kinds = redact(text)
    assert secret not in out
    assert MASK in out
    assert kinds, "a secret kind must be reported"


@pytest.mark.parametrize(("text", "secret", "kind"), CASES)
def test_secret_never_reaches_any_engine_output(text: str, secret: str, kind: str) -> None:
    d = diagnose(f"Error response from daemon: Get https://myreg.azurecr.io/v2/: unauthorized\n{text}")
    assert d.secret_found
    assert secret not in render_text(d)
    assert secret not in str(diagnosis_json(d))
    assert secret not in d.redacted_text


@pytest.mark.parametrize(
    "text",
    [
        "docker run -it -p 8080:80 nginx",
        "dial tcp 20.1.2.3:443: i/o timeout",
        "failed to get ACR token: POST https://myreg.azurecr.io/oauth2/exchange 403",
        "Fetch refresh token for registry 'myreg.azurecr.io' : OK",
    ],
)
def test_ordinary_error_text_is_not_redacted(text: str) -> None:
    out, kinds = redact(text)
    assert out == text
    assert kinds == []


def test_kubectl_secret_command_keeps_the_registry_and_masks_the_password() -> None:
    from bot.engine.extract import extract

    ex = extract(
        "kubectl create secret docker-registry acr-secret --docker-server=myreg.azurecr.io "
        "--docker-username=puller --docker-password=Pa55word-xyz\nError from server: unauthorized"
    )
    assert "Pa55word-xyz" not in ex.text
    assert ex.facts.login_server == "myreg.azurecr.io" and ex.facts.registry == "myreg"


def test_focusing_a_huge_paste_never_keeps_a_token_without_its_prefix() -> None:
    from bot.engine.extract import extract

    payload = "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6ImFjciJ9" * 80
    jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." + payload + ".c2lnbmF0dXJlLXBhcnQtaGVyZQ"
    line = '{"level":"info","auth":"Bearer ' + jwt + '","msg":"pull error from myreg.azurecr.io"}\n'
    ex = extract("x\n" * 30_000 + line + "y\n" * 1_000)
    assert payload[:40] not in ex.text
    assert ex.facts.secrets


def test_both_ways_of_finding_gates_agree() -> None:
    """Short texts find their gates with the automaton, long ones by substring tests: same set."""
    import json
    from pathlib import Path

    from bot.engine.redact import _GATE_CHARS, _present_gates, _present_gates_by_substring

    root = Path(__file__).resolve().parent
    texts = [json.loads(line)["text"].lower() for name in ("heldout", "heldout2", "heldout3")
             for line in (root / "corpus" / f"{name}.jsonl").read_text().splitlines() if line.strip()]  # fmt: skip
    texts += ["", "password=hunter2", "docker login -u x -p secret", "パスワード: secret", "-" * 50]
    for text in texts:
        by_automaton = _present_gates(text)
        assert by_automaton == {g for g in _GATE_CHARS if g in text}
        assert by_automaton == _present_gates_by_substring(text) & set(_GATE_CHARS)


def test_a_cut_private_key_does_not_swallow_the_next_lines_header_name() -> None:
    """Found by the canary property test: a private key pasted without its END line, a blank line,
    then ``Authorization: NTLM <token>``. The key's body used to take the word "Authorization"
    as a last base64 line, and the NTLM token, no longer after its header name, stayed in clear."""
    token = "TlRMTVNTUAAB7tX5J3DQCHUL5vKeX/TXiZ0uGBF3u/LYtRmCUvOMjgA2/Do74316Sk3WtT/4=="
    key = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nyjPdmdiunsYjZG7CwCY3=="
    out, kinds = redact(f"-----BEGIN PRIVATE KEY-----\n{key}\n\nAuthorization: NTLM {token}\n")
    assert token[8:40] not in out and "yjPdmdiunsYjZG7" not in out
    assert {"private-key", "authorization-header"} <= set(kinds)
    # the same with a full-width colon and a password that is not all base64
    out, _ = redact(f"-----BEGIN PRIVATE KEY-----\n{key}\n\npassword：oeAOF%39gIir.ZIy\n")
    assert "oeAOF" not in out and "39gIir" not in out
    # a key cut inside a JSON string is still masked to its last character
    out, _ = redact('{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "x": 1}')
    assert "MIIEvQ" not in out and "BAQEFAASC" not in out


def test_an_aws_secret_key_with_slashes_is_not_taken_for_a_path() -> None:
    """Found by a random canary mix: ``Yc/QV67...91YA/t/UgjSq`` has three short word-like pieces
    around one long random run, and was judged a path (3 of 4 segments "wordy") and left in clear."""
    secret = "Yc/QV67CyCFwRukp9zf5FVYiDRey91YA/t/UgjSq"
    out, kinds = redact(f"\taws_secret_access_key = {secret}")
    assert "QV67CyCF" not in out and "secret-setting" in kinds
    path = "api_key_file=/usr/lib/python3.11/site-packages/requests/certs.py"
    assert redact(path) == (path, [])  # a real path still is one
