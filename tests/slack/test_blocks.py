"""Block Kit builders stay within Slack's limits and never let user text ping anyone."""

from __future__ import annotations

import json

from bot.engine.models import CauseScore, Diagnosis, Evidence, Facts, FixStep, Status
from handlers import blocks


def _diagnosis(evidence_lines: int = 3, detail: str = "x", summary: str = "s") -> Diagnosis:
    return Diagnosis(
        cause="registry-public-access",
        confidence=0.9,
        reply=True,
        causes=[CauseScore("registry-public-access", 0.9, 1.0), CauseScore("client-proxy", 0.1, 0.1)],
        facts=Facts(registry="contosoreg", login_server="contosoreg.azurecr.io"),
        title="T" * 400,
        summary=summary,
        fix=[
            FixStep(
                text="Allow the client IP " * 20,
                command="az acr network-rule add -n contosoreg --ip-address 1.2.3.4",
            )
        ]
        * 30,
        evidence=[
            Evidence(
                check="probe",
                target=f"host{i}.azurecr.io",
                vantage="the bot's network",
                status=Status.FAIL,
                detail=detail,
            )
            for i in range(evidence_lines)
        ],
    )


def _check_limits(message: blocks.Rendered) -> None:
    assert message.text
    assert len(message.blocks) <= blocks.MAX_BLOCKS
    total = 0
    for block in message.blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= blocks.MAX_HEADER
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= blocks.MAX_SECTION
        total += len(json.dumps(block, ensure_ascii=False))
    assert total < 13000 + 2000  # JSON overhead included; text itself is kept under 11k
    assert sum(blocks._block_chars(b) for b in message.blocks) <= blocks.MAX_TOTAL


def test_huge_diagnosis_fits_and_overflows() -> None:
    message = blocks.diagnosis_message(
        _diagnosis(200, detail="D" * 900, summary="S" * 5000),
        diag_id="abc",
        lang="en",
        vantage="the bot's network",
        live=True,
    )
    _check_limits(message)
    assert message.overflow  # the rest of the evidence goes to follow-ups
    assert message.blocks[-1]["type"] == "actions"  # buttons survive trimming
    for extra in blocks.overflow_messages(message.overflow, "en"):
        _check_limits(extra)


def test_every_evidence_line_has_vantage() -> None:
    message = blocks.diagnosis_message(_diagnosis(3), diag_id="abc", lang="en", vantage="v", live=True)
    evidence = [b for b in message.blocks if b["type"] == "section" and "*Evidence*" in b["text"]["text"]]
    lines = evidence[0]["text"]["text"].split("\n")[1:]
    assert lines and all("observed: the bot's network" in line for line in lines)


def test_user_text_is_escaped() -> None:
    diagnosis = _diagnosis(1, detail="<!channel> <@U123> & <https://evil.example|click>", summary="<!here>")
    message = blocks.diagnosis_message(diagnosis, diag_id="abc", lang="en", vantage="v", live=False)
    dumped = json.dumps(message.blocks)
    assert "<!channel>" not in dumped and "<!here>" not in dumped and "<@U123>" not in dumped
    assert "&lt;!channel&gt;" in dumped


def test_japanese_strings() -> None:
    message = blocks.diagnosis_message(_diagnosis(1), diag_id="abc", lang="ja", vantage="v", live=True)
    assert "考えられる原因" in json.dumps(message.blocks, ensure_ascii=False)
    assert blocks.lang_of("ja-JP") == "ja" and blocks.lang_of("en-GB") == "en" and blocks.lang_of(None, "ja") == "ja"


def test_evidence_message_limits() -> None:
    evidence = [
        Evidence(check="dns", target="t", vantage="v", status=Status.OK, detail="d" * 500).to_dict() for _ in range(300)
    ]
    _check_limits(blocks.evidence_message(evidence, "en"))


def test_reply_offers_a_no_install_self_check() -> None:
    from bot.diagnose import diagnose
    from handlers.blocks import diagnosis_message

    d = diagnose(
        "Error response from daemon: Get https://contosoacr.azurecr.io/v2/: dial tcp 20.1.2.3:443: i/o timeout"
    )
    rendered = diagnosis_message(d, diag_id="d9", lang="en", vantage="the bot's network", live=False)
    contexts = " ".join(e["text"] for b in rendered.blocks if b["type"] == "context" for e in b["elements"])
    assert (
        "nslookup contosoacr.azurecr.io &amp;&amp; curl -sv --max-time 10 https://contosoacr.azurecr.io/v2/" in contexts
    )
    assert "acrcheck probe contosoacr" in contexts


def test_a_reply_about_another_registry_offers_no_live_check_acrcheck_would_refuse() -> None:
    """acrcheck's live checks and probe refuse Docker Hub, GHCR and self-hosted hosts: a reply
    about one offers the no-install command for that host instead of `/acrcheck` or the probe."""
    from bot.diagnose import diagnose
    from handlers.blocks import diagnosis_message

    d = diagnose('Error response from daemon: Get "https://ghcr.io/v2/": dial tcp 140.82.121.33:443: i/o timeout')
    for lang, words in (("en", "not an Azure registry"), ("ja", "Azure のレジストリではない")):
        rendered = diagnosis_message(d, diag_id="d10", lang=lang, vantage="the bot's network", live=False)
        contexts = " ".join(e["text"] for b in rendered.blocks if b["type"] == "context" for e in b["elements"])
        assert "curl -sv --max-time 10 https://ghcr.io" in contexts
        assert "acrcheck probe" not in contexts and "/acrcheck" not in contexts
        assert words in contexts and "ghcr.io" in contexts


def test_a_misspelt_acr_name_is_still_treated_as_azure() -> None:
    """`contosoacr.azurecr.com` is a look-alike of an ACR name: the engine answers with Azure's fix,
    so the reply must not say it is "not an Azure registry" (one test for both, hosts.registry_class_of)."""
    from bot.diagnose import diagnose
    from handlers.blocks import diagnosis_message

    d = diagnose(
        'Error response from daemon: Get "https://contosoacr.azurecr.com/v2/": dial tcp: lookup contosoacr.azurecr.com: no such host'
    )
    rendered = diagnosis_message(d, diag_id="d11", lang="en", vantage="the bot's network", live=False)
    contexts = " ".join(e["text"] for b in rendered.blocks if b["type"] == "context" for e in b["elements"])
    assert "not an Azure registry" not in contexts and "/acrcheck" in contexts
