"""Live evidence re-ranks causes; a failed check is never reported healthy."""

from bot.diagnose import diagnose
from bot.engine.classify import HEALTHY, rerank
from bot.engine.models import Evidence, Status

BOT = "the bot's network"


def ev(check: str, status: Status, *findings: str, **data: str) -> Evidence:
    return Evidence(check, "contosoreg.azurecr.io", BOT, status, f"{check} {status}", dict(data), 5.0, list(findings))


def test_all_checks_passing_is_healthy() -> None:
    d = rerank(
        None,
        [ev("dns", Status.OK, "dns.ok", "dns.public_answer"), ev("probe", Status.OK, "probe.reachable")],
        registry="contosoreg.azurecr.io",
    )
    assert d.cause == HEALTHY
    assert not d.reply


def test_a_failed_check_is_never_healthy() -> None:
    d = rerank(None, [ev("dns", Status.FAIL, "dns.timeout")], registry="contosoreg.azurecr.io")
    assert d.cause != HEALTHY
    assert d.causes[0].supported_by


def test_failure_no_card_explains_is_still_not_healthy() -> None:
    d = rerank(None, [ev("probe", Status.FAIL)], registry="contosoreg.azurecr.io")
    assert d.cause != HEALTHY


def test_control_plane_failures_alone_do_not_make_a_reachable_registry_unhealthy() -> None:
    evidence = [
        ev("dns", Status.OK, "dns.ok"),
        ev("probe", Status.OK, "probe.reachable"),
        ev("arm", Status.FAIL, "arm.error"),
    ]
    assert rerank(None, evidence, registry="contosoreg.azurecr.io").cause == HEALTHY


def test_healthy_observations_only_support_text_hypotheses() -> None:
    text = "dial tcp: lookup contosoreg.azurecr.io on 10.0.0.2:53: server misbehaving"
    offline = diagnose(text)
    live = rerank(offline, [ev("dns", Status.OK, "dns.ok", "dns.public_answer")], registry="contosoreg.azurecr.io")
    assert live.cause == "client-dns"
    assert live.causes[0].score > offline.causes[0].score
    assert any(BOT in line for line in live.causes[0].supported_by)
    assert all(c.id in {x.id for x in offline.causes} or c.id == HEALTHY for c in live.causes)


def test_contradicting_evidence_lowers_a_cause() -> None:
    text = "Error response from daemon: Get https://contosoreg.azurecr.io/v2/: dial tcp: lookup contosoreg.azurecr.io: no such host"
    offline = diagnose(text)
    assert offline.cause == "registry-not-found"
    live = rerank(
        offline, [ev("dns", Status.OK, "dns.ok"), ev("arm", Status.OK, "arm.found")], registry="contosoreg.azurecr.io"
    )
    assert live.cause != "registry-not-found"
    not_found = [c for c in live.causes if c.id == "registry-not-found"]
    assert not not_found or not_found[0].contradicted_by


def test_passive_reply_threshold_matches_the_default_channel_threshold() -> None:
    from bot.config import Settings
    from bot.engine.classify import REPLY_CONFIDENCE

    assert Settings.model_fields["reply_threshold"].default == REPLY_CONFIDENCE
