"""A failure at another registry (Docker Hub, GHCR, a self-hosted one) gets a fix that can apply there:
never an ``az acr`` command against ``ghcr.io``; an Azure registry keeps its Azure fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.diagnose import diagnose
from bot.engine.classify import render_fix
from bot.engine.extract import extract
from bot.engine.knowledge import KnowledgeError, load_knowledge
from bot.engine.knowledge_schema import validate_knowledge
from bot.engine.render_text import self_check_command

ROOT = Path(__file__).resolve().parents[1]

ELSEWHERE = [
    ('Error response from daemon: Head "https://ghcr.io/v2/acme/api/manifests/1.2": unauthorized', "auth", "ghcr.io"),
    (
        "Error response from daemon: pull access denied for myorg/private-api, repository does not exist or may "
        "require 'docker login': denied: requested access to the resource is denied",
        None,
        "docker.io",
    ),
    (
        "GitHub Actions で registry.cn-hangzhou.aliyuncs.com/team-ns/api:1.4 に push しようとすると "
        "denied: requested access to the resource is denied",
        "auth",
        "registry.cn-hangzhou.aliyuncs.com",
    ),
    (
        'Warning Failed kubelet Failed to pull image "ghcr.io/acme/api:1.2": rpc error: code = Unknown desc = failed '
        "to pull and unpack image: failed to resolve reference: failed to authorize: failed to fetch anonymous "
        "token: unexpected status: 401 Unauthorized",
        None,
        "ghcr.io",
    ),
    (
        "docker push harbor.corp.local:8443/team/api:1 -> unauthorized: authentication required",
        "auth",
        "harbor.corp.local:8443",
    ),
    (
        'Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: request canceled while '
        "waiting for connection (Client.Timeout exceeded while awaiting headers)",
        None,
        "registry-1.docker.io",
    ),
]


def _commands(d) -> list[str]:  # type: ignore[no-untyped-def]
    out = [step.command for step in d.fix if step.command]
    if d.decisive_check and d.decisive_check.command:
        out.append(d.decisive_check.command)
    return out


@pytest.mark.parametrize(("paste", "cause", "host"), ELSEWHERE)
def test_another_registry_gets_no_azure_commands(paste: str, cause: str | None, host: str) -> None:
    d = diagnose(paste)
    assert d.reply and d.fix
    if cause:
        assert d.cause == cause
    commands = _commands(d)
    assert not [c for c in commands if c.startswith(("az ", "acrcheck ")) or " az acr " in c], commands
    assert host in " ".join(step.text + " " + (step.command or "") for step in d.fix) or d.cause == "other-acr"


def test_an_azure_registry_keeps_its_azure_fix() -> None:
    d = diagnose(
        'Error response from daemon: Get "https://contosoacr.azurecr.io/v2/": unauthorized: authentication required'
    )
    assert d.cause == "auth"
    assert any("az acr login --name contosoacr" in c for c in _commands(d))


def test_a_paste_that_names_no_registry_keeps_the_azure_fix() -> None:
    d = diagnose("unauthorized: authentication required")
    assert any(c.startswith("az ") for c in _commands(d))


def test_every_card_that_needs_it_has_a_fix_for_other_registries() -> None:
    kb = load_knowledge()
    for card_id in (
        "auth",
        "other-acr",
        "registry-not-found",
        "aks-pull",
        "client-firewall",
        "client-firewall-data-endpoint",
    ):
        card = kb.card(card_id)
        assert card.fix_elsewhere, card_id
        assert not [s.command for s in card.fix_elsewhere if s.command and "az " in s.command]


def test_an_azure_command_in_fix_elsewhere_is_refused(tmp_path: Path) -> None:
    for path in (ROOT / "knowledge").glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    card = yaml.safe_load((tmp_path / "auth.yaml").read_text(encoding="utf-8"))
    card["fix_elsewhere"].append({"text": {"en": "x", "ja": "x"}, "command": "az acr login --name {registry}"})
    (tmp_path / "auth.yaml").write_text(yaml.safe_dump(card, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="fix_elsewhere"):
        validate_knowledge(tmp_path)


def test_an_undecided_failure_at_another_registry_gets_a_check_that_can_run_there() -> None:
    """The deciding check of an undecided reply must work against the registry in the paste:
    acrcheck refuses hosts that are not Azure's, so "/acrcheck harbor..." would decide nothing."""
    d = diagnose(
        'docker login harbor.internal.example\nError response from daemon: Get "https://harbor.internal.example/v2/": '
        "dial tcp: lookup harbor.internal.example on 10.0.0.2:53: no such host"
    )
    assert d.reply and d.ambiguous and d.decisive_check is not None
    check = d.decisive_check
    assert "acrcheck" not in check.text and "Azure" not in check.text
    assert check.command and "harbor.internal.example" in check.command
    assert not check.command.startswith(("az ", "acrcheck "))


def test_an_undecided_azure_failure_keeps_the_live_check() -> None:
    """A 403 at an Azure registry's login: its firewall, a proxy or a service; the live check decides."""
    d = diagnose("Error response from daemon: login attempt to https://contosoacr.azurecr.io/v2/ failed with status: 403 Forbidden")
    assert d.ambiguous, [(c.id, c.confidence) for c in d.causes]
    assert d.decisive_check is not None and d.decisive_check.command
    assert d.decisive_check.command.startswith("acrcheck ") and "contosoacr.azurecr.io" in d.decisive_check.command


def test_an_azure_command_in_decide_elsewhere_is_refused(tmp_path: Path) -> None:
    for path in (ROOT / "knowledge").glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    card = yaml.safe_load((tmp_path / "client-dns.yaml").read_text(encoding="utf-8"))
    card["decide_elsewhere"]["command"] = "acrcheck probe {host}"
    (tmp_path / "client-dns.yaml").write_text(yaml.safe_dump(card, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="decide_elsewhere"):
        validate_knowledge(tmp_path)


AZURE_ONLY_WORDS = ("azurecr", "ARM", "AcrPull", "az aks", "az acr", "ABAC", "admin user", "for the bot")


def test_a_reply_about_another_registry_explains_it_without_azure_specifics() -> None:
    """The summary and every candidate's "what tells it apart" fit a Harbor or GHCR failure too."""
    for paste in (
        'docker login harbor.internal.example\nError response from daemon: Get "https://harbor.internal.example/v2/": '
        "dial tcp: lookup harbor.internal.example on 10.0.0.2:53: no such host",
        # a bare "denied" from GHCR: credentials or a missing package, the text cannot tell
        'Error response from daemon: Head "https://ghcr.io/v2/acme/api/manifests/1.2": denied',
    ):
        d = diagnose(paste)
        texts = [d.summary or ""] + [c.tell or "" for c in d.candidates]
        assert d.candidates, paste
        assert not d.docs  # the cards' documents are Azure's
        assert not [w for w in AZURE_ONLY_WORDS for t in texts if w in t], texts


def test_an_azure_reply_keeps_the_azure_explanation() -> None:
    d = diagnose(
        'Error response from daemon: Get "https://contosoacr.azurecr.io/v2/": dial tcp: lookup contosoacr.azurecr.io: no such host'
    )
    assert ".azurecr.us" in (d.summary or "")
    assert d.docs and all(doc.startswith("https://learn.microsoft.com/") for doc in d.docs)


def test_texts_for_other_registries_name_nothing_azure_only() -> None:
    kb = load_knowledge()
    for card in kb.cards.values():
        for text in (card.summary_elsewhere, card.tell_elsewhere):
            if text is None:
                continue
            for lang_text in (text.en, text.ja):
                assert not [w for w in AZURE_ONLY_WORDS if w in lang_text], (card.id, lang_text)


def test_a_signal_can_say_whose_registry_failed_when_no_host_does() -> None:
    """Google's registry API disabled names no registry host; the signal's ``registry_class``
    says it is not Azure's, so the fix enables that API instead of registering an Azure provider."""
    d = diagnose(
        "Error: Error creating Repository: googleapi: Error 403: Artifact Registry API has not been used in project "
        "1234 before or it is disabled. Enable it and then retry."
    )
    assert d.cause == "registry-resource-provider"
    commands = _commands(d)
    assert any(c.startswith("gcloud services enable artifactregistry.googleapis.com") for c in commands), commands
    assert not [c for c in commands if c.startswith("az ")], commands
    assert "Microsoft.ContainerRegistry" not in d.summary + d.title


def test_the_azure_provider_registration_keeps_its_azure_fix() -> None:
    d = diagnose(
        "(MissingSubscriptionRegistration) The subscription is not registered to use namespace "
        "'Microsoft.ContainerRegistry'. See https://aka.ms/rps-not-found"
    )
    assert d.cause == "registry-resource-provider"
    assert any(c.startswith("az provider register --namespace Microsoft.ContainerRegistry") for c in _commands(d))


@pytest.mark.parametrize(
    "paste",
    [
        'Error saving credentials: error storing credentials - err: exec: "docker-credential-desktop.exe": '
        "executable file not found in $PATH, out: ``",
        "docker login ghcr.io\nError saving credentials: error storing credentials - err: exit status 1, out: "
        "`The stub received bad data.`",
    ],
)
def test_a_broken_credential_helper_is_repaired_first(paste: str) -> None:
    """Logging in again cannot work while docker cannot store the login: the helper comes first."""
    d = diagnose(paste)
    assert d.cause == "auth" and d.fix
    assert "credsStore" in d.fix[0].text and d.fix[0].command and "config.json" in d.fix[0].command


def test_a_service_refusing_its_image_is_told_what_it_accepts() -> None:
    d = diagnose(
        "Error: creating Lambda Function (api): InvalidParameterValueException: Source image "
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:2.0 is not valid. Provide a valid source image."
    )
    assert d.cause == "other-acr" and d.fix
    assert "--provenance=false" in (d.fix[0].command or "")
    assert not [c for c in _commands(d) if c.startswith("az ")]


@pytest.mark.parametrize(
    ("paste", "command"),
    [
        # a self-hosted registry answers on its own port, not on 443
        (
            "docker push harbor.corp.local:8443/team/api:1 -> unauthorized: authentication required",
            "nslookup harbor.corp.local && curl -sv --max-time 10 https://harbor.corp.local:8443/v2/ -o /dev/null",
        ),
        # Docker Hub's image names say docker.io; its registry API is registry-1.docker.io
        (
            "Error response from daemon: pull access denied for acme/api, repository does not exist or may require "
            "'docker login': denied: requested access to the resource is denied",
            "nslookup registry-1.docker.io && curl -sv --max-time 10 https://registry-1.docker.io/v2/ -o /dev/null",
        ),
        (
            'Error response from daemon: Get "https://contosoacr.azurecr.io/v2/": unauthorized: authentication required',
            "nslookup contosoacr.azurecr.io && curl -sv --max-time 10 https://contosoacr.azurecr.io/v2/ -o /dev/null",
        ),
        # an IPv6 registry: kept whole (it had become a host named "fd00"), nothing to look up, no curl globbing
        (
            'Error response from daemon: Get "https://[fd00::5]:5000/v2/": http: server gave HTTP response to HTTPS client',
            "curl -g -sv --max-time 10 https://[fd00::5]:5000/v2/ -o /dev/null",
        ),
        (
            'Error response from daemon: Get "https://10.0.0.5:5000/v2/": http: server gave HTTP response to HTTPS client',
            "curl -sv --max-time 10 https://10.0.0.5:5000/v2/ -o /dev/null",
        ),
    ],
)
def test_the_self_check_asks_the_registry_where_it_answers(paste: str, command: str) -> None:
    assert self_check_command(diagnose(paste)) == command


@pytest.mark.parametrize(
    ("paste", "first"),
    [
        (
            'Error response from daemon: Head "https://contosoreg.azurecr.io/v2/web/manifests/1": toomanyrequests: too many '
            "requests",
            "Throttling",
        ),
        (
            "Error response from daemon: manifest for contosoreg.azurecr.io/web:9 not found: manifest unknown",
            "Check that",
        ),
        (
            'Error response from daemon: Get "https://ghcr.io/v2/": received unexpected HTTP status: 503 Service '
            "Unavailable",
            "5xx",
        ),
    ],
)
def test_the_step_for_the_sub_case_the_paste_shows_comes_first(paste: str, first: str) -> None:
    """One card covers throttling, a missing tag and an outage; ``lead`` puts the one shown first."""
    d = diagnose(paste)
    assert d.cause == "other-acr" and d.fix[0].text.startswith(first), [s.text[:30] for s in d.fix]


def test_docker_hubs_rate_limit_is_docker_hubs_even_unnamed() -> None:
    d = diagnose(
        "Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may increase the "
        "limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"
    )
    assert d.cause == "other-acr" and d.fix[0].text.startswith("Rate limit")
    assert not [c for c in _commands(d) if c.startswith("az ")]


def test_a_missing_permission_leads_with_the_roles() -> None:
    d = diagnose(
        'PUT https://contosoreg.azurecr.io/v2/web/manifests/1.0 -> 403 {"errors":[{"code":"DENIED","message":"the '
        'principal lacks permission to push to repository web"}]}'
    )
    assert d.cause == "auth" and d.fix[0].text.startswith("Check which roles"), [s.text[:30] for s in d.fix]


def test_a_lookup_command_takes_the_host_without_its_port() -> None:
    d = diagnose(
        'docker login harbor.internal.example:8443\nError response from daemon: Get "https://harbor.internal.example:8443'
        '/v2/": dial tcp: lookup harbor.internal.example on 10.0.0.2:53: no such host'
    )
    lookups = [c for c in _commands(d) if c.startswith("nslookup")]
    assert lookups and not [c for c in lookups if ":8443" in c.split("&&")[0]], lookups


def test_a_bracketed_word_is_not_an_ipv6_registry() -> None:
    """Only an address with a colon keeps its brackets: ``[deadbeef]`` in prose is a word."""
    from bot.engine.extract import _bare_reference

    assert _bare_reference("[fd00::5]:5000") == "[fd00::5]:5000"
    assert _bare_reference("[deadbeef]") == "deadbeef"
    assert _bare_reference("[ghcr.io]") == "ghcr.io"


def test_a_clock_behind_gets_the_clock_step_alone() -> None:
    """'current time … is before …': the only step is the clock; tags, throttling and outages are noise."""
    d = diagnose(
        'Get "https://registry-1.docker.io/v2/": x509: certificate has expired or is not yet valid: current time '
        "2021-01-01T00:00:12Z is before 2024-02-22T00:00:00Z"
    )
    assert d.cause == "other-acr" and d.reply
    assert [step.command for step in d.fix] == ["date -u && timedatectl status && sudo timedatectl set-ntp true"]


def test_an_expired_self_hosted_certificate_is_renewed_first() -> None:
    """An expired certificate is renewed and reloaded on the registry; installing a CA cannot help."""
    d = diagnose(
        'Get "https://harbor.corp.example:8443/v2/": x509: certificate has expired or is not yet valid: current time '
        "2024-01-01T00:00:12Z is after 2023-12-22T00:00:00Z"
    )
    assert d.cause == "registry-tls-config"
    assert d.fix[0].command == (
        "openssl s_client -connect harbor.corp.example:8443 -servername harbor.corp.example </dev/null 2>/dev/null "
        "| openssl x509 -noout -subject -issuer -dates"
    )
    assert "renew" in d.fix[0].text


def test_a_plain_http_registry_leads_with_insecure_registries() -> None:
    """The registry speaks plain HTTP ("server gave HTTP response to HTTPS client"): no CA to install."""
    d = diagnose('Get "https://registry.lab.example:5000/v2/": http: server gave HTTP response to HTTPS client')
    assert d.cause == "registry-tls-config"
    assert d.fix[0].command == '{"insecure-registries": ["registry.lab.example:5000"]}'


def test_a_registry_inside_dockers_default_bridge_range() -> None:
    """A registry at 172.17.x.x is routed to docker0: the bridge's range is the fix, first."""
    text = "Error while pulling image: Get http://registry.lab.example:5000/v2/: dial tcp 172.17.11.17:5000: connect: no route to host"
    assert extract(text).derived["target_ip_scope"] == {"private", "docker-bridge"}
    d = diagnose(text)
    assert d.cause == "client-firewall" and d.reply
    assert d.fix[0].command == "ip route get 172.17.11.17" and '"bip"' in d.fix[0].text
    other = extract("dial tcp 172.18.0.5:5000: connect: no route to host")
    assert other.derived["target_ip_scope"] == {"private"}


def test_a_refusal_that_may_mean_missing_or_private_gets_the_login_step_not_throttling_or_outage() -> None:
    """'pull access denied … may require docker login' is a missing or a private repository: the registry-side
    card's fix names both (check the name, then log in), and leaves out throttling and outages the paste
    does not show; a throttled or failing registry still gets its step first."""
    card = load_knowledge().cards["other-acr"]

    def steps(text: str) -> list[tuple[str, str | None]]:
        ex = extract(text)
        return [(step.text, step.command) for step in render_fix(card, ex, ex.facts, "en")]

    refused = steps(
        "docker pull acme-labs/reporting:2.3\nError response from daemon: pull access denied for acme-labs/reporting, "
        "repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
    )
    assert refused[0][0].startswith("Check that the repository and tag exist")
    assert "docker login docker.io" in [command for _, command in refused], refused
    assert not any(text.startswith(("Rate limit", "5xx")) for text, _ in refused), refused
    throttled = steps("Error response from daemon: toomanyrequests: You have reached your pull rate limit.")
    assert throttled[0][0].startswith("Rate limit")
    failing = steps('Error response from daemon: Get "https://quay.io/v2/": received unexpected HTTP status: 503 Service Unavailable')
    assert failing[0][0].startswith("5xx")
    generic = steps("Error response from daemon: unknown: registry returned an unexpected answer for quay.io/acme/api:1")
    assert any(text.startswith("Rate limit") for text, _ in generic) and any(text.startswith("5xx") for text, _ in generic)


def test_a_registry_at_an_address_gets_the_commands_for_that_registry() -> None:
    """An IoT Edge runtime pulling from a registry at an IP and port: not ACR, so no az acr command."""
    d = diagnose(
        "aziot-edged[812]: [INFO] - Pulling image via tag 10.16.6.4:443/edge/sensor:1.0...\n"
        "aziot-edged[812]: [WARN] - Could not pull image 10.16.6.4:443/edge/sensor:1.0\n"
        "aziot-edged[812]: [WARN] -         caused by: manifest for 10.16.6.4:443/edge/sensor:1.0 not found: "
        "manifest unknown: manifest unknown"
    )
    assert d.facts.registry_host == "10.16.6.4:443"
    commands = [step.command or "" for step in d.fix]
    assert "docker manifest inspect 10.16.6.4:443/edge/sensor:1.0" in commands, commands
    assert not [c for c in commands if c.startswith("az ")], commands


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (
            "docker: no matching manifest for linux/arm64/v8 in the manifest list entries. (contosoreg.azurecr.io/api:2.1)",
            "docker buildx imagetools inspect contosoreg.azurecr.io/api:2.1",
        ),
        (
            'Code="ImageOsTypeNotMatchContainerGroup" Message="The container image \'mcr.microsoft.com/dotnet/framework/'
            "aspnet:4.8' doesn't support specified OS 'Linux' for container group 'web'.\"",
            "docker buildx imagetools inspect mcr.microsoft.com/dotnet/framework/aspnet:4.8",
        ),
    ],
)
def test_a_platform_mismatch_leads_with_the_platforms_the_tag_has(text: str, command: str) -> None:
    """No variant for the host's platform: the first step says so and lists the tag's platforms."""
    d = diagnose(text)
    assert d.cause == "other-acr"
    assert d.fix[0].command == command, [s.command for s in d.fix]


def test_a_refused_attach_leads_with_the_callers_rights() -> None:
    """'Could not create a role assignment for ACR': the account running --attach-acr lacks the right to
    create role assignments; the first step says who may, before any pod-level step."""
    d = diagnose(
        "$ az aks update -n aks1 -g rg --attach-acr contosoreg\n"
        "Could not create a role assignment for ACR. Are you an Owner on this subscription?"
    )
    assert d.cause == "aks-pull"
    assert "role assignment" in d.fix[0].text and "Owner" in d.fix[0].text
    assert "--scope $(az acr show --name contosoreg --query id -o tsv)" in (d.fix[0].command or "")


def test_a_registry_reply_does_not_show_the_unrelated_cards_reasons_as_evidence() -> None:
    """"No error in the message" is the unrelated card's reason; under a registry cause it would
    contradict the reply, so only the registry causes' reasons are shown."""
    d = diagnose("I am getting an \"OsVersionNotSupported\" when deploying my Server 1803 container to the windows virtual kubelet")
    assert d.reply and d.cause == "other-acr"
    assert all(e.data.get("cause") != "unrelated" for e in d.evidence), [e.detail for e in d.evidence]


def test_mcrs_backing_registry_is_a_public_registry_not_the_users_acr() -> None:
    """MCR's token realm is mcrprod.azurecr.io, a registry no user owns: its throttling gets the
    public-registry advice, never 'az acr show-usage --name mcrprod' or a higher SKU."""
    d = diagnose(
        "ERROR: failed to authorize: failed to fetch anonymous token: unexpected status from GET request to "
        "https://mcrprod.azurecr.io/oauth2/token?scope=repository%3Adotnet%2Fsdk%3Apull&service=mcrprod.azurecr.io: "
        "429 Too Many Requests\n > [internal] load metadata for mcr.microsoft.com/dotnet/sdk:8.0"
    )
    assert d.cause == "other-acr"
    commands = " ".join(step.command or "" for step in d.fix)
    assert "az acr" not in commands and "--name mcrprod" not in commands, commands
