"""Canaries: secrets people paste, in realistic pastes (English and Japanese), never reach any output.

Each canary is one secret shape inside the kind of paste it arrives in: a terminal session,
a config file, a JSON answer of ``az``, a proxy variable, a log line. Its secret is random
(seeded, so failures reproduce) and is checked by fragment: no 6-character piece of it may
appear in the text, JSON or JSONL output of the CLI, in the Slack blocks built from the
diagnosis, or in any log line captured at DEBUG (the paste itself is logged too, as a
handler logging a failure would). Each paste must also raise the redaction warning.
"""

from __future__ import annotations

import io
import json
import logging
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.diagnose import diagnose
from bot.engine.render_text import diagnosis_json, render_text
from handlers import blocks, logsafe

FRAGMENT = 6
_RNG = random.Random(20240512)
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
B32 = string.ascii_lowercase + "234567"


def rnd(length: int, alphabet: str = ALNUM) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(length))


def password() -> str:
    """A password as people choose them: letters, digits and a symbol or two."""
    return rnd(5) + _RNG.choice("!#%^*-_+") + rnd(6) + _RNG.choice("!#-.") + rnd(3)


def b64(length: int) -> str:
    body = rnd(length - 2, B64)
    return body + "=="


#: The header of a JWT says only which algorithm signed it: the same in every token, not a secret.
JWT_HEADER = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"


#: Fixed parts of token formats: the same in every token of the kind, so not secret (the random part is).
PUBLIC_PARTS = (
    JWT_HEADER, "github_pat_", "glpat-", "xoxb-", "xapp-1-", "sk_live_", "sk-proj-", "pypi-AgEIcHlwaS5vcmc",
    "eyJhdXRocyI6eyJjb250b3NvcmVn", "TlRMTVNTUAAB",
)  # fmt: skip


def jwt() -> str:
    return f"{JWT_HEADER}.eyJ{rnd(120, ALNUM + '_-')}.{rnd(86, ALNUM + '_-')}"


def aad_secret() -> str:
    return rnd(3) + "8Q~" + rnd(34, ALNUM + "_.~-")


def pem_body() -> str:
    return "\n".join(rnd(64, B64) for _ in range(6)) + "\n" + rnd(20, B64) + "=="


@dataclass(frozen=True)
class Canary:
    name: str
    template: str  # {S} is the secret; {T} an optional second secret
    secret: Callable[[], str]
    second: Callable[[], str] | None = None


REG = "contosoreg.azurecr.io"
CANARIES: list[Canary] = [
    # --- registry logins on the command line
    Canary("docker-login-p", f"$ docker login {REG} -u contosoreg -p {{S}}", password),
    Canary("docker-login-password-eq", f"$ docker login {REG} --username contosoreg --password={{S}}", password),
    Canary("docker-login-password-quoted", f"$ docker login {REG} --username contosoreg --password '{{S}}'", password),
    Canary("echo-n-password-stdin", f'$ echo -n "{{S}}" | docker login {REG} -u jdoe --password-stdin', password),
    Canary(
        "echo-password-stdin",
        f"$ echo {{S}} | docker login {REG} --username 00000000-0000-0000-0000-000000000000 --password-stdin",
        password,
    ),
    Canary("printf-password-stdin", f"$ printf '%s' '{{S}}' | podman login {REG} -u sp-app --password-stdin", password),
    Canary("here-string-password-stdin", f'$ oras login {REG} -u ci --password-stdin <<< "{{S}}"', password),
    Canary(
        "powershell-password-stdin", f'PS> Write-Output "{{S}}" | docker login {REG} -u ci --password-stdin', password
    ),
    Canary("helm-registry-login", f"$ helm registry login {REG} --username ci --password {{S}}", password),
    Canary("podman-login-p-first", f"$ podman login -u ci -p {{S}} {REG}", password),
    Canary(
        "az-login-service-principal",
        "$ az login --service-principal -u 11111111-2222-3333-4444-555555555555 -p {S} --tenant contoso.onmicrosoft.com",
        aad_secret,
    ),
    Canary("az-acr-login-password", "$ az acr login --name contosoreg --username contosoreg --password {S}", password),
    Canary(
        "acr-token-as-password",
        f"$ docker login {REG} -u 00000000-0000-0000-0000-000000000000 -p {{S}}",
        jwt,
    ),
    Canary("crane-auth-login", f"$ crane auth login {REG} -u puller -p {{S}}", password),
    Canary("skopeo-creds", f"$ skopeo copy --src-creds puller:{{S}} docker://{REG}/app:1 dir:/tmp/app", password),
    Canary(
        "skopeo-dest-creds",
        f"$ skopeo copy docker://nginx:1.25 docker://{REG}/nginx:1.25 --dest-creds ci:{{S}}",
        password,
    ),
    Canary("sshpass", "$ sshpass -p {S} ssh azureuser@10.1.0.4 'docker pull contosoreg.azurecr.io/app:1'", password),
    # --- az output pasted whole
    Canary("acr-expose-token-json", f'{{{{\n  "accessToken": "{{S}}",\n  "loginServer": "{REG}"\n}}}}', jwt),
    Canary(
        "acr-credential-show-json",
        '{\n  "passwords": [\n    {\n      "name": "password",\n      "value": "{S}"\n    },\n'
        '    {\n      "name": "password2",\n      "value": "{T}"\n    }\n  ],\n  "username": "contosoreg"\n}',
        lambda: rnd(52, ALNUM + "+/"),
        lambda: rnd(52, ALNUM + "+/"),
    ),
    Canary(
        "acr-token-create-json",
        '"passwords": [\n  {\n    "creationTime": "2024-05-01T10:00:00.000000+00:00",\n    "expiry": null,\n'
        '    "name": "password1",\n    "value": "{S}"\n  }\n]',
        lambda: rnd(52, ALNUM + "+/"),
    ),
    Canary(
        "acr-credential-show-table",
        "$ az acr credential show -n contosoreg -o table\nUSERNAME    PASSWORD                                              PASSWORD2\n"
        "----------  ----------------------------------------------------  ----------------------------------------------------\n"
        "contosoreg  {S}  {T}",
        lambda: rnd(52, ALNUM + "+/"),
        lambda: rnd(52, ALNUM + "+/"),
    ),
    Canary(
        "sp-create-for-rbac",
        '{\n  "appId": "11111111-2222-3333-4444-555555555555",\n  "displayName": "acr-pull",\n'
        '  "password": "{S}",\n  "tenant": "66666666-7777-8888-9999-000000000000"\n}',
        aad_secret,
    ),
    Canary("aad-secret-value-line", "Secret value: {S}\nSecret ID: 0d5a2c4e-1f3b-4a6c-9e8d-7b1c2a3d4e5f", aad_secret),
    Canary(
        "storage-keys-list",
        '[\n  {\n    "creationTime": "2024-01-01T00:00:00+00:00",\n    "keyName": "key1",\n'
        '    "permissions": "FULL",\n    "value": "{S}"\n  }\n]',
        lambda: b64(88),
    ),
    # --- Kubernetes
    Canary(
        "kubectl-docker-password-eq",
        f"$ kubectl create secret docker-registry acr-pull --docker-server={REG} --docker-username=puller "
        "--docker-password={S}",
        password,
    ),
    Canary(
        "kubectl-docker-password-space",
        f"$ kubectl create secret docker-registry acr-pull --docker-server {REG} --docker-username puller "
        "--docker-password {S} -n apps",
        password,
    ),
    Canary("kubectl-from-literal", "$ kubectl create secret generic acr --from-literal=password={S} -n apps", password),
    Canary(
        "k8s-secret-yaml-data",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: acr\ndata:\n  password: {S}",
        lambda: b64(32),
    ),
    Canary(
        "dockerconfigjson-yaml",
        "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {S}",
        lambda: "eyJhdXRocyI6eyJjb250b3NvcmVn" + rnd(120, B64) + "fX0=",
    ),
    Canary(
        "dockerconfig-auth",
        f'{{{{\n  "auths": {{{{\n    "{REG}": {{{{\n      "auth": "{{S}}"\n    }}}}\n  }}}}\n}}}}',
        lambda: b64(40),
    ),
    Canary(
        "dockerconfig-identitytoken",
        f'{{{{"auths": {{{{"{REG}": {{{{"auth": "", "identitytoken": "{{S}}"}}}}}}}}}}}}',
        jwt,
    ),
    Canary(
        "dockerconfig-decoded",
        f'{{{{"auths":{{{{"{REG}":{{{{"username":"puller","password":"{{S}}"}}}}}}}}}}}}',
        password,
    ),
    Canary(
        "kubeconfig-client-key-data", "users:\n- name: clusterUser\n  user:\n    client-key-data: {S}", lambda: b64(120)
    ),
    Canary("kubeconfig-token", "users:\n- name: clusterAdmin\n  user:\n    token: {S}", lambda: rnd(64, HEX)),
    Canary("service-account-jwt", "Using token {S} to pull from contosoreg.azurecr.io", jwt),
    Canary("helm-set-password", "$ helm upgrade app ./chart --set imageCredentials.password={S} -n apps", password),
    # --- HTTP headers and curl
    Canary("authorization-bearer-jwt", "> GET /v2/_catalog HTTP/1.1\n> Authorization: Bearer {S}", jwt),
    Canary(
        "authorization-basic",
        "> GET /v2/ HTTP/1.1\n> Host: contosoreg.azurecr.io\n> Authorization: Basic {S}",
        lambda: b64(40),
    ),
    Canary("curl-bearer-opaque", f'$ curl -H "Authorization: Bearer {{S}}" https://{REG}/v2/_catalog', lambda: rnd(48)),
    Canary(
        "proxy-authorization",
        "> CONNECT contosoreg.azurecr.io:443 HTTP/1.1\n> Proxy-Authorization: Basic {S}",
        lambda: b64(32),
    ),
    Canary("authorization-ntlm", "Authorization: NTLM {S}", lambda: "TlRMTVNTUAAB" + rnd(60, B64) + "=="),
    Canary("curl-u", f"$ curl -u contosoreg:{{S}} https://{REG}/v2/_catalog", password),
    Canary("curl-user-eq", f"$ curl --user=contosoreg:{{S}} https://{REG}/v2/_catalog", password),
    Canary(
        "curl-proxy-user",
        f"$ curl --proxy-user jdoe:{{S}} -x http://proxy.contoso.com:3128 https://{REG}/v2/",
        password,
    ),
    Canary("wget-http-password", f"$ wget --http-user=ci --http-password={{S}} https://{REG}/v2/", password),
    Canary("ocp-apim-subscription-key", "Ocp-Apim-Subscription-Key: {S}", lambda: rnd(32, HEX)),
    Canary("x-api-key-header", "x-api-key: {S}", lambda: rnd(40)),
    Canary("cookie-header", "Cookie: ai_session={S}; x-ms-gateway-slice=estsfd", lambda: rnd(40)),
    Canary("api-key-query", "GET https://api.contoso.com/v1/status?api_key={S}&format=json", lambda: rnd(32)),
    Canary(
        "function-code-query",
        "POST https://contoso-fn.azurewebsites.net/api/notify?code={S}",
        lambda: rnd(54, ALNUM + "_-") + "==",
    ),
    # --- proxies and URLs with credentials
    Canary("https-proxy-userinfo", "HTTPS_PROXY=http://jdoe:{S}@proxy.contoso.com:3128", password),
    Canary("https-proxy-email-user", "HTTPS_PROXY=http://jdoe@contoso.com:{S}@proxy.contoso.com:3128", password),
    Canary("http-proxy-domain-user", "export http_proxy=http://CONTOSO%5Cjdoe:{S}@10.0.0.5:8080", password),
    Canary("proxy-password-with-at", "https_proxy=http://alice:{S}@proxy.corp:3128", lambda: rnd(6) + "@" + rnd(6)),
    Canary("proxy-password-with-slash", "HTTP_PROXY=http://alice:{S}@proxy.corp:3128/", lambda: rnd(5) + "/" + rnd(6)),
    Canary(
        "daemon-json-proxy",
        '{{"proxies": {{"https-proxy": "http://svc-docker:{S}@proxy.contoso.com:8080"}}}}',
        password,
    ),
    Canary("registry-url-creds", f"Get https://contosoreg:{{S}}@{REG}/v2/: unauthorized", password),
    Canary(
        "git-x-access-token",
        "git clone https://x-access-token:{S}@github.com/contoso/app.git",
        lambda: "ghs_" + rnd(36),
    ),
    Canary("git-token-only-userinfo", "remote: https://{S}@github.com/contoso/app.git", lambda: "ghp_" + rnd(36)),
    Canary("ado-pat-userinfo", "git clone https://{S}@dev.azure.com/contoso/app/_git/app", lambda: rnd(52, B32)),
    Canary(
        "ado-pat-pip-index",
        "pip install --index-url https://build:{S}@pkgs.dev.azure.com/contoso/_packaging/feed/pypi/simple/ app",
        lambda: rnd(52, B32),
    ),
    Canary("postgres-url", "DATABASE_URL=postgresql://acr_bot:{S}@db.contoso.internal:5432/acrcheck", password),
    Canary("redis-url-empty-user", "REDIS_URL=redis://:{S}@cache.contoso.internal:6379/0", password),
    Canary("mongodb-srv-url", "mongodb+srv://app:{S}@cluster0.abcde.mongodb.net/prod?retryWrites=true", password),
    Canary("amqps-url", "amqps://svc:{S}@rabbit.contoso.internal:5671/%2F", password),
    # --- well-known token shapes
    Canary("github-pat-classic", "export GITHUB_TOKEN={S}", lambda: "ghp_" + rnd(36)),
    Canary("github-pat-fine-grained", "token: {S}", lambda: "github_pat_" + rnd(22) + "_" + rnd(59)),
    Canary("gitlab-pat", "CI_REGISTRY_PASSWORD={S}", lambda: "glpat-" + rnd(20, ALNUM + "_-")),
    Canary("npm-token-npmrc", "//registry.npmjs.org/:_authToken={S}", lambda: "npm_" + rnd(36)),
    Canary(
        "slack-bot-token",
        "SLACK_BOT_TOKEN={S}",
        lambda: f"xoxb-{rnd(12, string.digits)}-{rnd(13, string.digits)}-{rnd(24)}",
    ),
    Canary(
        "slack-app-token",
        "SLACK_APP_TOKEN={S}",
        lambda: f"xapp-1-A{rnd(10, string.digits)}-{rnd(13, string.digits)}-{rnd(64, HEX)}",
    ),
    Canary(
        "slack-webhook",
        "curl -X POST https://hooks.slack.com/services/T0123ABCD/B0456EFGH/{S} -d @msg.json",
        lambda: rnd(24),
    ),
    Canary("slack-signing-secret", "SLACK_SIGNING_SECRET={S}", lambda: rnd(32, HEX)),
    Canary(
        "aws-access-key-id", "aws_access_key_id = {S}", lambda: "AKIA" + rnd(16, string.ascii_uppercase + string.digits)
    ),
    Canary("aws-secret-access-key", "aws_secret_access_key = {S}", lambda: rnd(40, B64)),
    Canary(
        "aws-session-token-query",
        "GET https://s3.amazonaws.com/b/k?X-Amz-Security-Token={S}&X-Amz-Date=20240501",
        lambda: rnd(120, ALNUM + "%"),
    ),
    Canary(
        "aws-presigned-signature",
        "GET https://b.s3.amazonaws.com/layer?X-Amz-Expires=300&X-Amz-Signature={S}",
        lambda: rnd(64, HEX),
    ),
    Canary("google-api-key", "GOOGLE_API_KEY={S}", lambda: "AIza" + rnd(35, ALNUM + "_-")),
    Canary("stripe-live-key", "Stripe::Key = {S}", lambda: "sk_live_" + rnd(24)),
    Canary("openai-key", "OPENAI_API_KEY={S}", lambda: "sk-proj-" + rnd(48, ALNUM + "_-")),
    Canary("sendgrid-key", "SENDGRID={S}", lambda: "SG." + rnd(22, ALNUM + "_-") + "." + rnd(43, ALNUM + "_-")),
    Canary("datadog-api-key", "DD_API_KEY={S}", lambda: rnd(32, HEX)),
    Canary("ado-pat-env", "AZURE_DEVOPS_EXT_PAT={S}", lambda: rnd(52, B32)),
    # --- Azure connection strings and SAS
    Canary(
        "blob-sas-in-pull-error",
        "Error: failed to copy: httpReadSeeker: failed open: failed to do request: Get "
        '"https://contosoreg.blob.core.windows.net/0a1b-layer/sha256:ab?se=2030-01-01T00%3A00%3A00Z&sig={S}&sp=r&sr=b&sv=2018-03-28"',
        lambda: rnd(30, ALNUM) + "%2B" + rnd(10) + "%3D",
    ),
    Canary(
        "sas-token-standalone",
        "sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2030-01-01&spr=https&sig={S}",
        lambda: rnd(40, ALNUM) + "%3D",
    ),
    Canary(
        "storage-connection-string",
        "DefaultEndpointsProtocol=https;AccountName=contosodiag;AccountKey={S};EndpointSuffix=core.windows.net",
        lambda: b64(88),
    ),
    Canary(
        "service-bus-connection-string",
        "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={S}",
        lambda: rnd(43, B64) + "=",
    ),
    Canary(
        "sql-connection-string",
        "Server=tcp:contoso.database.windows.net,1433;User ID=acr;Password={S};Encrypt=True;",
        password,
    ),
    Canary("odbc-pwd", "Driver={{ODBC Driver 18}};Server=db;Uid=acr;Pwd={S};", password),
    Canary("azure-client-secret-env", "AZURE_CLIENT_SECRET={S}", aad_secret),
    Canary("arm-client-secret-env", "export ARM_CLIENT_SECRET={S}", aad_secret),
    Canary(
        "azure-json-aad-client-secret",
        '{{"cloud": "AzurePublicCloud", "aadClientId": "x", "aadClientSecret": "{S}"}}',
        aad_secret,
    ),
    Canary("client-secret-json", '"clientSecret": "{S}"', aad_secret),
    Canary(
        "client-secret-flag",
        "$ az aks update-credentials -g rg -n aks --reset-service-principal --client-secret {S}",
        aad_secret,
    ),
    Canary(
        "client-secret-token-body",
        '$ curl -d "client_id=abc&client_secret={S}&grant_type=client_credentials" https://login.microsoftonline.com/t/oauth2/v2.0/token',
        aad_secret,
    ),
    Canary(
        "acr-refresh-token-form",
        f"POST https://{REG}/oauth2/token\ngrant_type=refresh_token&service={REG}&refresh_token={{S}}",
        jwt,
    ),
    Canary("access-token-json", '{{"access_token":"{S}","expires_in":3600}}', lambda: rnd(60, ALNUM + "._-")),
    # --- config files
    Canary("yaml-password", "registry:\n  server: contosoreg.azurecr.io\n  password: {S}", password),
    Canary("env-registry-password", "REGISTRY_PASSWORD={S}", password),
    Canary("docker-run-env-password", "$ docker run -e POSTGRES_PASSWORD={S} contosoreg.azurecr.io/db:16", password),
    Canary("terraform-admin-password", 'admin_password = "{S}"', password),
    Canary("arm-parameter-password", '"adminPassword": {{\n  "value": "{S}"\n}}', password),
    Canary("nuget-cleartext-password", '<add key="ClearTextPassword" value="{S}" />', password),
    Canary("maven-password-element", "<server>\n  <id>acr</id>\n  <password>{S}</password>\n</server>", password),
    Canary(
        "pypirc-password",
        "[pypi]\nusername = __token__\npassword = {S}",
        lambda: "pypi-AgEIcHlwaS5vcmc" + rnd(60, ALNUM + "_-"),
    ),
    Canary("json-passwd", '{{"user": "acr", "passwd": "{S}"}}', password),
    Canary("openssl-passin", "$ openssl pkcs12 -in cert.pfx -nodes -passin pass:{S}", password),
    # --- private keys
    Canary("pem-rsa", "-----BEGIN RSA PRIVATE KEY-----\n{S}\n-----END RSA PRIVATE KEY-----", pem_body),
    Canary("pem-ec", "-----BEGIN EC PRIVATE KEY-----\n{S}\n-----END EC PRIVATE KEY-----", pem_body),
    Canary("pem-openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\n{S}\n-----END OPENSSH PRIVATE KEY-----", pem_body),
    Canary(
        "pem-in-json",
        '{{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n{S}\\n-----END PRIVATE KEY-----\\n"}}',
        lambda: "\\n".join(rnd(64, B64) for _ in range(4)),
    ),
    Canary("pem-truncated", "-----BEGIN PRIVATE KEY-----\n{S}", pem_body),
    Canary(
        "pem-encrypted",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,0A1B2C3D4E5F\n\n{S}\n-----END RSA PRIVATE KEY-----",
        pem_body,
    ),
    # --- Japanese labels and full-width punctuation
    Canary("ja-password-colon", "パスワード：{S}", password),
    Canary("ja-password-ascii-colon", "パスワード: {S}", password),
    Canary("ja-password-wa", "ACR のパスワードは {S} です", password),
    Canary("ja-password-ideographic-space", "パスワード　：　{S}", password),
    Canary("ja-token", "アクセストークン：{S}", lambda: rnd(48)),
    Canary("ja-secret", "クライアントシークレット: {S}", aad_secret),
    Canary("fullwidth-colon-password", "password：{S}", password),
    # --- the same secret again later, without any context
    Canary(
        "secret-repeated-without-context",
        f"$ docker login {REG} -u ci -p {{S}}\nError: password {{S}} was rejected",
        password,
    ),
    # --- shapes found missing in review (appended last: the seeded secrets above stay the same)
    Canary("docker-login-p-attached", f"$ docker login -u ci -p{{S}} {REG}", password),
    Canary("sshpass-p-attached", "$ sshpass -p{S} ssh azureuser@10.1.0.4 'docker login contosoreg.azurecr.io'", password),
    Canary(
        "powershell-securestring",
        "PS> $pw = ConvertTo-SecureString \"{S}\" -AsPlainText -Force\nPS> Connect-AzContainerRegistry -Name contosoreg",
        password,
    ),
    Canary(
        "password-stdin-heredoc", f"$ docker login {REG} -u ci --password-stdin <<EOF\n{{S}}\nEOF", password
    ),
    Canary("ja-password-brackets", "パスワード「{S}」でログインしようとしました", password),
    Canary("ja-secret-key", "シークレットキー：{S}", password),
]

EN_WRAP = (
    "Hi team, pushes to our ACR fail since this morning. Here is what I ran:\n```\n{paste}\n```\n"
    'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": unauthorized: authentication required'
)
JA_WRAP = (
    "今朝から ACR への push が失敗します。実行したコマンドとログです：\n```\n{paste}\n```\n"
    'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": unauthorized: authentication required\n'
    "どうすれば直りますか？"
)


@dataclass(frozen=True)
class Case:
    canary: str
    lang: str
    paste: str
    secrets: tuple[str, ...]


def _cases() -> list[Case]:
    cases: list[Case] = []
    for canary in CANARIES:
        secrets = [canary.secret()]
        if canary.second is not None:
            secrets.append(canary.second())
        paste = canary.template.replace("{S}", secrets[0]).replace("{T}", secrets[-1])
        paste = paste.replace("{{", "{").replace("}}", "}")
        for lang, wrap in (("en", EN_WRAP), ("ja", JA_WRAP)):
            cases.append(Case(canary.name, lang, wrap.format(paste=paste), tuple(secrets)))
    return cases


CASES = _cases()


def fragments(secret: str) -> set[str]:
    parts = secret.replace("\\n", "\n").split("\n")  # a key body leaks line by line
    pieces = {p[i : i + FRAGMENT] for p in parts for i in range(max(1, len(p) - FRAGMENT + 1)) if len(p) >= FRAGMENT}
    return {piece for piece in pieces if not any(piece in public for public in PUBLIC_PARTS)}


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def _cli(args: list[str], data: str) -> str:
    from bot.cli.main import main

    out = io.StringIO()
    main(args, stdin=_Stdin(io.BytesIO(data.encode()), encoding="utf-8"), stdout=out)
    return out.getvalue()


def outputs(case: Case, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """Every output a paste can reach: CLI text/JSON/JSONL, Slack blocks, and logs at DEBUG."""
    logsafe.install()
    log = logging.getLogger("handlers.messages")
    with caplog.at_level(logging.DEBUG):
        d = diagnose(case.paste, lang=case.lang)
        rendered = blocks.diagnosis_message(
            d, diag_id="d1", lang=case.lang, vantage="acrcheck bot", live=False, explicit=True
        )
        evidence = blocks.evidence_message([e.to_dict() for e in d.evidence], case.lang)
        found = {
            "text": _cli(["diagnose", "--lang", case.lang, "-"], case.paste) + render_text(d),
            "json": _cli(["diagnose", "--json", "--lang", case.lang], case.paste) + json.dumps(diagnosis_json(d)),
            "jsonl": _cli(
                ["diagnose", "--jsonl", "--lang", case.lang], json.dumps({"id": 1, "text": case.paste}) + "\n"
            ),
            "slack": json.dumps([rendered.text, rendered.blocks, rendered.overflow, evidence.text, evidence.blocks]),
        }
        log.debug("message from U123 in C456: %s", case.paste)
        try:
            raise ValueError(f"could not handle {case.paste!r}")
        except ValueError:
            log.exception("listener failed")
        logging.getLogger("acrcheck.serve").info("diagnosis %s for %s", d.cause, case.paste[:200])
    found["logs"] = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    found["warning"] = "yes" if d.secret_found and d.notes else "NO REDACTION WARNING"
    return found


@pytest.mark.parametrize("case", CASES, ids=[f"{c.canary}-{c.lang}" for c in CASES])
def test_no_fragment_of_a_pasted_secret_reaches_any_output(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    found = outputs(case, caplog)
    leaks = sorted(
        f"{where}: {piece!r}"
        for secret in case.secrets
        for piece in fragments(secret)
        for where, text in found.items()
        if piece in text
    )
    assert not leaks, leaks[:5]
    assert found["warning"] == "yes"


def test_there_are_at_least_80_secret_shapes_in_both_languages() -> None:
    assert len(CANARIES) >= 80
    assert len({c.name for c in CANARIES}) == len(CANARIES)
    assert {c.lang for c in CASES} == {"en", "ja"}


@pytest.mark.parametrize(
    ("paste", "kept"),
    [
        ("$ docker run -it -p 8080:80 contosoreg.azurecr.io/web:1", "8080:80"),
        (
            'File "/opt/venv/lib/python3.11/site-packages/sqlalchemy/dialects/postgresql/asyncpg.py", line 5',
            "site-packages/sqlalchemy/dialects/postgresql/asyncpg.py",
        ),
        ("failed to fetch anonymous token: unexpected status: 401 Unauthorized", "unexpected status"),
        ("Password:\nLogin Succeeded", "Login Succeeded"),
        ("$ echo $ACR_PASSWORD | docker login contosoreg.azurecr.io -u ci --password-stdin", "$ACR_PASSWORD"),
        ("$ docker login contosoreg.azurecr.io -u *** -p ***", "-p ***"),
        ("パスワードが間違っています (unauthorized)", "パスワードが間違っています"),
        ("imagePullSecrets:\n- name: acr-secret\nsecretName: acr-secret", "secretName: acr-secret"),
        ("$ sshpass -f ~/.pw ssh -p2222 azureuser@10.1.0.4 'docker login contosoreg.azurecr.io'", "-p2222"),
        ("PS> $pw = ConvertTo-SecureString $env:ACR_PASSWORD -AsPlainText -Force", "$env:ACR_PASSWORD"),
        ("$ docker login -u ci --password-stdin contosoreg.azurecr.io <<< \"$ACR_PASSWORD\"\nhere is the log:", "the log"),
    ],
)
def test_innocent_text_is_left_alone(paste: str, kept: str) -> None:
    from bot.engine.redact import redact

    text, kinds = redact(paste)
    assert kept in text and not kinds
    assert kept in logsafe.redact(paste)


def test_proxy_password_after_a_user_name_with_an_at_sign_is_masked_and_reported() -> None:
    d = diagnose(
        "HTTPS_PROXY=http://jdoe@contoso.com:Pr0xy-P4ss!x@proxy.contoso.com:3128\n"
        'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": proxyconnect tcp: EOF'
    )
    assert d.facts.proxy == "http://jdoe@contoso.com:[REDACTED]@proxy.contoso.com:3128"
    assert "P4ss" not in json.dumps(diagnosis_json(d))
    assert d.facts.secrets and d.notes


def test_password_stdin_pipeline_is_masked_reported_and_never_a_namespace() -> None:
    for line in ('echo -n "W1nter-Pass" | docker login', "echo -n W1nter-Pass | docker login"):
        d = diagnose(
            f"{line} contosoreg.azurecr.io -u jdoe --password-stdin\n"
            'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": unauthorized: authentication required'
        )
        assert "W1nter" not in json.dumps(diagnosis_json(d))
        assert "namespace" not in d.facts.kubernetes
        assert d.facts.secrets == ["password-stdin"] and d.notes


_SEPARATORS = ["\n", "\r\n", "\n\n", "\n```\n", "\n> ", " ; ", "\n\t"]
_PROSE = [
    "",
    "here is the log:",
    "ログを貼ります：",
    'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": unauthorized',
    "Retrying in 5 seconds",
    "│ kubectl output │",
    "&gt; quoted by Slack",
]


@given(
    st.lists(st.sampled_from(range(len(CANARIES))), min_size=1, max_size=4, unique=True),
    st.lists(st.sampled_from(_SEPARATORS), min_size=4, max_size=4),
    st.lists(st.sampled_from(_PROSE), min_size=5, max_size=5),
)
@settings(max_examples=150, deadline=None)
def test_any_mix_of_pasted_secrets_is_masked_and_redaction_is_idempotent(
    picks: list[int], separators: list[str], prose: list[str]
) -> None:
    from bot.engine.redact import redact

    _RNG.seed(repr((picks, separators, prose)))  # the same example always gets the same secrets
    parts: list[str] = [prose[0]]
    secrets: list[str] = []
    for n, index in enumerate(picks):
        canary = CANARIES[index]
        values = [canary.secret()] + ([canary.second()] if canary.second else [])
        secrets += values
        line = canary.template.replace("{S}", values[0]).replace("{T}", values[-1])
        parts += [separators[n], line.replace("{{", "{").replace("}}", "}"), separators[n], prose[n + 1]]
    paste = "".join(parts)
    out, kinds = redact(paste)
    assert kinds
    assert not [piece for secret in secrets for piece in fragments(secret) if piece in out], paste
    assert redact(out) == (out, [])  # masks are never masked again, nothing new is found
    assert diagnose(paste).secret_found


def _diagnosis(facts: Any, fix_text: str = "Check the proxy.") -> Any:
    from bot.engine.models import CauseScore, Diagnosis, FixStep

    return Diagnosis(
        cause="client-proxy",
        confidence=0.9,
        reply=True,
        causes=[CauseScore("client-proxy", 0.9, 5.0, reasons=["the proxy refused"])],
        facts=facts,
        fix=[FixStep(fix_text, "az acr check-health -n contosoreg")],
    )


def test_last_line_of_defence_masks_a_secret_that_reached_a_fact_and_reports_it() -> None:
    """Whatever the extractor glues together, a secret shape in a fact never leaves the engine."""
    from bot.engine.models import Facts
    from bot.engine.scrub import scrub_diagnosis

    facts = Facts(
        proxy="http://svc:Wint3r-Pr0xy!@proxy.contoso.com:3128", kubernetes={"context": "token=ghp_" + "a1B2" * 9}
    )
    d = scrub_diagnosis(_diagnosis(facts))
    out = json.dumps(diagnosis_json(d))
    assert "Wint3r" not in out and "a1B2a1B2" not in out
    assert d.facts.secrets and d.notes  # reported like any other secret


def test_a_secret_found_in_the_paste_is_masked_wherever_it_reappears() -> None:
    from bot.engine.models import Facts
    from bot.engine.scrub import scrub_diagnosis

    d = scrub_diagnosis(
        _diagnosis(Facts(), fix_text="Log in again: your password Xy7-pass!9 was rejected"), ["Xy7-pass!9"]
    )
    assert "Xy7-pass!9" not in render_text(d) and "echoed-secret" in d.facts.secrets


def test_live_evidence_printed_by_the_cli_is_redacted() -> None:
    from bot.engine.models import Evidence, Status
    from bot.engine.scrub import scrub_evidence

    evidence = [
        Evidence(
            "probe",
            "contosoreg.azurecr.io",
            "this machine",
            Status.FAIL,
            "proxy http://svc:Wint3r-Pr0xy!@proxy.contoso.com:3128 answered 407",
            data={"proxy": "http://svc:Wint3r-Pr0xy!@proxy.contoso.com:3128"},
        )
    ]
    assert "Wint3r" not in repr(scrub_evidence(evidence))
