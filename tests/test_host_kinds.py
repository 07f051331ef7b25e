"""Which hosts are registries: a cloud's other API endpoints under the same domain are not.

``amazonaws.com`` also serves STS, SSM, EC2 and EKS API servers, ``pkg.dev`` serves Python and
npm repositories, and ``docker.com`` serves apt/yum packages; a timeout to one of them is not a
registry failure, while ECR, Artifact Registry's Docker hosts and Docker Hub stay registries.
"""

from __future__ import annotations

import pytest

from bot.diagnose import diagnose
from bot.engine.extract import extract
from bot.engine.hosts import classify_host, names_registry


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "public_registry"),
        ("xxxxxxxxxxxx.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "public_registry"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "public_registry"),
        ("api.ecr.eu-central-1.amazonaws.com", "public_registry"),
        ("public.ecr.aws", "public_registry"),
        ("europe-west4-docker.pkg.dev", "public_registry"),
        ("registry-1.docker.io", "public_registry"),
        ("prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com", "data_cdn"),
        ("sts.eu-central-1.amazonaws.com", "other"),
        ("ssm.us-west-2.amazonaws.com", "other"),
        ("ec2.ap-south-1.amazonaws.com", "other"),
        ("0123456789abcdef.gr7.eu-west-1.eks.amazonaws.com", "other"),
        ("europe-python.pkg.dev", "other"),
        ("download.docker.com", "other"),
        ("registry.ollama.ai", "public_registry"),
        ("registry.baidubce.com", "public_registry"),
        ("registry.redhat.io", "public_registry"),
        ("openkruise-registry.cn-shanghai.cr.aliyuncs.com", "public_registry"),  # Ollama's model registry speaks the registry API
    ],
)
def test_host_kind(host: str, kind: str) -> None:
    assert classify_host(host).kind == kind


@pytest.mark.parametrize(
    "text",
    [
        'operator error: fetching credentials: RequestError: send request failed\ncaused by: Post "https://sts.eu-central-1.'
        'amazonaws.com/": dial tcp 52.94.1.2:443: i/o timeout',
        "Err:5 https://download.docker.com/linux/ubuntu jammy InRelease\n  Could not connect to download.docker.com:443 "
        "(13.33.1.2), connection timed out",
    ],
)
def test_another_cloud_endpoint_is_not_a_registry_failure(text: str) -> None:
    d = diagnose(text)
    assert not d.reply, [(c.id, c.confidence) for c in d.causes]


def test_an_ecr_timeout_is_still_a_registry_failure() -> None:
    d = diagnose(
        'Error response from daemon: Get "https://123456789012.dkr.ecr.eu-central-1.amazonaws.com/v2/": '
        "dial tcp 52.94.1.2:443: i/o timeout"
    )
    assert d.reply and d.cause != "unrelated"


@pytest.mark.parametrize(
    ("host", "intended"),
    [
        ("ghrc.io", "ghcr.io"),
        ("registry-1.dokcer.io", "docker.io"),
        ("quya.io", "quay.io"),
        ("grc.io", "gcr.io"),
        ("mcr.microsfot.com", "mcr.microsoft.com"),
        ("registry.k8.io", "registry.k8s.io"),
    ],
)
def test_a_misspelt_public_registry_is_recognised(host: str, intended: str) -> None:
    info = classify_host(host)
    assert (info.kind, info.registry) == ("public_lookalike", intended)


@pytest.mark.parametrize("host", ["ghcr.io", "gcr.io", "acr.io", "ocr.io", "gcr.ie", "ghcr.com", "harbor.corp.example"])
def test_real_and_unrelated_names_are_not_taken_for_typos(host: str) -> None:
    assert classify_host(host).kind != "public_lookalike"


def test_a_typo_of_ghcr_is_answered_as_a_name_that_does_not_exist() -> None:
    d = diagnose(
        '$ docker pull ghrc.io/acme/api:1.2\nError response from daemon: Get "https://ghrc.io/v2/": read tcp '
        "10.0.0.5:51234->185.199.108.153:443: read: connection reset by peer"
    )
    assert d.cause == "registry-not-found" and d.reply
    assert any("ghcr.io" in step.text for step in d.fix)


@pytest.mark.parametrize(
    ("host", "intended"),
    [
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        ("api.ecr.us-west-1a.amazonaws.com", "api.ecr.us-west-1.amazonaws.com"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.cn", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
    ],
)
def test_an_ecr_name_that_cannot_exist_says_what_was_meant(host: str, intended: str) -> None:
    """China's regions live under amazonaws.com.cn, and an availability zone is not a region."""
    info = classify_host(host)
    assert (info.kind, info.registry) == ("public_lookalike", intended)


@pytest.mark.parametrize(
    "host",
    ["123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "api.ecr.eu-central-1.amazonaws.com"],
)
def test_a_real_ecr_name_is_a_public_registry(host: str) -> None:
    assert classify_host(host).kind == "public_registry"


@pytest.mark.parametrize(
    ("host", "registry", "intended"),
    [
        ("contoso.azurecr.com", "contoso", "contoso.azurecr.io"),  # a misspelt top-level domain
        ("contoso.azurcr.io", "contoso", "contoso.azurecr.io"),
        ("govreg.azurecr.us.com", "govreg", "govreg.azurecr.us"),  # the cloud survives the typo
        ("contoso.azurecr.io.azurecr.io", "contoso", "contoso.azurecr.io"),  # the suffix twice
        ("contoso.westeurope.azurecr.io", "contoso", "contoso.azurecr.io"),  # a region is not part of the login server
    ],
)
def test_a_misnamed_acr_host_names_the_login_server_it_stands_for(host: str, registry: str, intended: str) -> None:
    """A reply to 'lookup contoso.azurecr.com: no such host' gives az acr the registry's name and
    the corrected login server, not the name that cannot exist."""
    info = classify_host(host)
    assert info.kind in ("lookalike", "malformed")
    assert info.registry == registry
    d = diagnose(f'Error response from daemon: Get "https://{host}/v2/": dial tcp: lookup {host}: no such host')
    assert d.cause == "registry-not-found"
    commands = [step.command for step in d.fix if step.command]
    assert f"nslookup {intended} 8.8.8.8" in commands
    assert f"az acr show --name {registry} --query loginServer --output tsv" in commands
    assert any(intended in e.detail and host in e.detail for e in d.evidence)


def test_a_misnamed_acr_host_without_a_registry_name_keeps_the_host() -> None:
    """No valid registry name before the typo (Azure's are 5-50 letters and digits): nothing is
    guessed, the host stays in the commands."""
    assert classify_host("azurecr.com.example").registry is None
    assert classify_host("my-reg.azurecr.com").registry is None
    d = diagnose("dial tcp: lookup my_reg.azurecr.com: no such host")
    assert all("--name my_reg " not in (step.command or "") for step in d.fix)


@pytest.mark.parametrize(
    ("first", "is_registry"),
    [("ghcr.io", True), ("harbor:5000", True), ("localhost", True), ("build-box:port", True), ("library", False), ("acme", False)],
)
def test_the_part_before_the_first_slash_names_a_registry_by_dockers_rule(first: str, is_registry: bool) -> None:
    """One rule for the extractor and the image reader: a dot, a port or localhost (Docker's own)."""
    assert names_registry(first) is is_registry
    pushed = extract(f"docker push {first}/team/app:1.2\nunauthorized: authentication required").facts.registry_host
    assert pushed == (first if is_registry else "docker.io")
