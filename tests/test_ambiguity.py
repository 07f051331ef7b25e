"""Every pasted registry failure is answered; when the text cannot decide, the reply says so."""

from __future__ import annotations

import json

import pytest

from bot.diagnose import diagnose
from bot.engine.models import SimilarCase
from bot.engine.render_text import diagnosis_json, render_text
from handlers import blocks

AMBIGUOUS = "Error: 403 Forbidden when pulling from contosoacr.azurecr.io"


def test_ambiguous_failure_is_answered_with_candidates_and_a_deciding_check() -> None:
    d = diagnose(AMBIGUOUS)
    assert d.reply and d.ambiguous
    assert 2 <= len(d.candidates) <= 3
    assert d.candidates[0].id == d.cause
    assert "registry-public-access" in {c.id for c in d.candidates}
    assert all(c.tell and c.title for c in d.candidates)
    assert d.decisive_check is not None and d.decisive_check.command
    assert "contosoacr" in d.decisive_check.command
    assert d.answer_confidence >= d.confidence
    assert d.answer_confidence == pytest.approx(min(1.0, sum(c.confidence for c in d.candidates)), abs=0.002)


def test_ambiguity_in_text_and_json() -> None:
    d = diagnose(AMBIGUOUS)
    text = render_text(d)
    assert "cannot decide between these causes" in text and d.decisive_check is not None
    assert f"$ {d.decisive_check.command}" in text
    data = json.loads(json.dumps(diagnosis_json(d)))
    assert data["ambiguous"] is True
    assert [c["id"] for c in data["candidates"]] == [c.id for c in d.candidates]
    assert data["decisive_check"]["command"] == d.decisive_check.command
    assert data["candidates"][0]["tells_apart"]


def test_ambiguity_in_japanese() -> None:
    d = diagnose("contosoacr.azurecr.io からのプルで 403 Forbidden エラーが発生します")
    assert d.lang == "ja" and d.reply
    if d.ambiguous:
        assert "判別できません" in render_text(d)


def test_clear_failures_are_not_flagged_ambiguous() -> None:
    d = diagnose(
        "Error response from daemon: Get https://contosoacr.azurecr.io/v2/: denied: client with IP '203.0.113.7' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    )
    assert d.cause == "registry-public-access" and d.reply and not d.ambiguous
    assert d.candidates == [] and d.decisive_check is None
    assert d.answer_confidence == d.confidence


@pytest.mark.parametrize(
    "text",
    [
        "docker push contosoacr.azurecr.io/app:v1 -> push failed with an unknown error",
        "can't pull from our registry since this morning: Error response from daemon: received unexpected HTTP status: 418",
        "ACR タスクによるイメージのプッシュまたはプルができない",
        "helm pull oci://contosoacr.azurecr.io/charts/app --version 1.2.3: failed to pull",
    ],
)
def test_registry_failures_without_a_rule_are_still_answered(text: str) -> None:
    d = diagnose(text)
    assert d.reply and d.cause not in ("unrelated", "healthy"), [(c.id, c.score) for c in d.causes]


@pytest.mark.parametrize(
    "text",
    [
        "lunch at noon? the new place on 5th",
        "npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padd - Not found",
        "Status: Downloaded newer image for contosoacr.azurecr.io/app:v1",
        "fatal: unable to access 'https://github.com/org/repo.git/': Could not resolve host: github.com",
    ],
)
def test_chatter_and_other_tools_stay_silent(text: str) -> None:
    assert not diagnose(text).reply


def test_slack_reply_shows_candidates_and_check() -> None:
    d = diagnose(AMBIGUOUS)
    rendered = blocks.diagnosis_message(d, diag_id="d1", lang="en", vantage="the bot's network", live=False)
    joined = json.dumps(rendered.blocks)
    assert "cannot decide between these causes" in joined
    assert d.decisive_check is not None and d.decisive_check.command.split()[0] in joined
    assert len(rendered.blocks) <= blocks.MAX_BLOCKS


def test_show_evidence_lists_similar_solved_cases() -> None:
    cases = [
        SimilarCase("x-1", "Pulls <time out> | behind proxy", "https://github.com/o/r/issues/1", "client-proxy",
                    "Set HTTPS_PROXY for the daemon & restart", None, 0.5),
        SimilarCase("x-2", "Other", "javascript:alert(1)", "client-proxy", None, "proxy ate the CONNECT", 0.3),
    ]  # fmt: skip
    rendered = blocks.evidence_message([], "en", cases)
    text = rendered.blocks[0]["text"]["text"]
    assert "Similar solved cases" in text
    assert "<https://github.com/o/r/issues/1|Pulls &lt;time out&gt; ¦ behind proxy>" in text
    assert "— fix: Set HTTPS_PROXY for the daemon &amp; restart" in text
    assert "javascript:" not in text and "— cause: proxy ate the CONNECT" in text
    ja = blocks.evidence_message([], "ja", cases[:1]).blocks[0]["text"]["text"]
    assert "似た解決済みの事例" in ja and "— 解決方法:" in ja


def test_show_evidence_in_japanese_localises_paste_lines() -> None:
    d = diagnose("昨日から pull できません: Get https://contosoacr.azurecr.io/v2/: proxyconnect tcp: EOF")
    evidence = [e.to_dict() for e in d.evidence]
    rendered = blocks.evidence_message(evidence, "ja", d.similar_cases)
    joined = json.dumps(rendered.blocks, ensure_ascii=False)
    assert "ユーザーの貼り付けから" in joined and "from the user's paste" not in joined


def test_nearest_real_cases_solved_both_ways_make_the_reply_undecided() -> None:
    """Top confidence well above the ambiguity bar, but the nearest library cases were solved as
    either cause: say so. When the rules leave the runner-up far behind, the vote alone does not."""
    from bot.engine.classify import SPLIT_VOTE, classify
    from bot.engine.extract import extract
    from bot.engine.learned import CaseIndex, Learned, features

    paste = "Error: failed to pull contosoacr.azurecr.io/api:1.0"  # a failure no rule tells apart
    ex = extract(paste)
    feats = features(ex)
    labels = ["client-proxy"] * 7 + ["client-firewall"] * 3
    index = CaseIndex.build([f"c{i}" for i in range(10)], labels, [set(feats) for _ in labels])
    split = classify(ex, learned=Learned(index=index, sure_margin=1e9), cite=False)
    assert split.cause == "client-proxy"
    assert split.ambiguous and [c.id for c in split.candidates][:2] == ["client-proxy", "client-firewall"]
    one_way = Learned(index=CaseIndex.build([f"c{i}" for i in range(10)], ["client-proxy"] * 10, [set(feats)] * 10))
    one_way.sure_margin = 1e9
    decided = classify(ex, learned=one_way, cite=False)
    assert decided.cause == "client-proxy" and not decided.ambiguous
    assert SPLIT_VOTE <= 3 / 10  # the split used above is one the engine must call undecided
    strong = extract("Error response from daemon: Get https://contosoacr.azurecr.io/v2/: EOF")  # the rules say proxy
    strong_feats = features(strong)
    index = CaseIndex.build([f"c{i}" for i in range(10)], labels, [set(strong_feats) for _ in labels])
    ruled = classify(strong, learned=Learned(index=index, sure_margin=1e9), cite=False)
    assert ruled.cause == "client-proxy" and not ruled.ambiguous
