"""Every `az acr check-health` error code maps to a cause (the CLI's own advice is often wrong)."""

import pytest

from bot.diagnose import diagnose

EXPECTED = {
    "DOCKER_COMMAND_ERROR": "client-docker-daemon",
    "DOCKER_DAEMON_ERROR": "client-docker-daemon",
    "DOCKER_VERSION_ERROR": "client-docker-daemon",
    "DOCKER_PULL_ERROR": "client-firewall",
    "CMK_ERROR": "other-acr",
    "CONNECTIVITY_DNS_ERROR": "registry-not-found",
    "CONNECTIVITY_FORBIDDEN_ERROR": "registry-public-access",
    "CONNECTIVITY_AAD_LOGIN_ERROR": "auth",
    "CONNECTIVITY_WWW_AUTHENTICATE_ERROR": "auth",
    "CONNECTIVITY_REFRESH_TOKEN_ERROR": "auth",
    "CONNECTIVITY_ACCESS_TOKEN_ERROR": "auth",
    "CONNECTIVITY_SSL_ERROR": "tls-interception",
    "CONNECTIVITY_TOOMANYREQUESTS_ERROR": "other-acr",
    "LOGIN_SERVER_ERROR": "registry-not-found",
    "UNEXPECTED_ERROR": "other-acr",
}


@pytest.mark.parametrize(("code", "cause"), EXPECTED.items())
def test_checkhealth_code(code: str, cause: str) -> None:
    d = diagnose(f"az acr check-health -n myreg --yes\n2024-01-02 10:00:00.000000 An error occurred: {code}\n")
    assert d.facts.checkhealth_codes == [code]
    assert d.cause == cause
    assert d.reply


def test_refresh_token_403_is_network_first() -> None:
    text = (
        "An error occurred: CONNECTIVITY_REFRESH_TOKEN_ERROR\n"
        "Access to registry 'myreg.azurecr.io' was denied. Response code: 403. Please try running 'az login' again"
    )
    d = diagnose(text)
    assert d.cause in {"registry-public-access", "registry-private-endpoint"}
    assert "auth" not in [c.id for c in d.causes[:1]]


def test_passing_check_health_is_silent() -> None:
    text = "DNS lookup to myreg.azurecr.io at IP 20.1.2.3 : OK\nChallenge endpoint https://myreg.azurecr.io/v2/ : OK\nFetch refresh token for registry 'myreg.azurecr.io' : OK\nFetch access token for registry 'myreg.azurecr.io' : OK"
    assert not diagnose(text).reply


def test_a_missing_challenge_names_the_path_and_the_service_side() -> None:
    """check-health raises CONNECTIVITY_CHALLENGE_ERROR for any request error on /v2/ (refused,
    reset, a proxy's) and for a /v2/ that answers without a challenge; the real pastes with it
    in the library were a private endpoint and a service-side fault. The text cannot decide:
    the reply names the path and the service side as its two leading candidates."""
    d = diagnose("az acr check-health -n myreg --yes\n2024-01-02 10:00:00.000000 An error occurred: CONNECTIVITY_CHALLENGE_ERROR\n")
    assert d.facts.checkhealth_codes == ["CONNECTIVITY_CHALLENGE_ERROR"]
    assert d.reply
    assert {c.id for c in d.causes[:2]} == {"client-firewall", "other-acr"}, [(c.id, c.confidence) for c in d.causes]
