"""The learned layer: a fresh artefact, nearest-case votes, similar solved cases, and the blend."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.diagnose import diagnose
from bot.engine.cases import default_cases
from bot.engine.classify import classify
from bot.engine.extract import extract
from bot.engine.learned import (
    JAPANESE_QUERY,
    LINEAR_WEIGHT,
    RANK_ORDER,
    TEXT_BUDGET,
    TRAINING,
    CaseIndex,
    Learned,
    LinearModel,
    artefact_path,
    default_learned,
    features,
    focus_text,
    load_learned,
    scan,
    text_features,
    train_linear,
    training_digest,
)
from bot.engine.render_text import diagnosis_json, render_text

ROOT = Path(__file__).resolve().parents[1]


def test_artefact_is_fresh() -> None:
    """Adding a case or editing signals.yaml without `python scripts/train_cases.py` fails here."""
    recorded = json.loads(artefact_path().read_text(encoding="utf-8"))["library_sha256"]
    assert recorded == training_digest(), "knowledge/learned.json is stale: run python scripts/train_cases.py"


def test_artefact_covers_the_library() -> None:
    learned = default_learned()
    assert learned is not None
    assert learned.index.case_ids == [c.id for c in default_cases()]


def test_train_script_check_mode() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/train_cases.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_train_script_rebuilds_the_same_artefact(tmp_path: Path) -> None:
    out = tmp_path / "learned.json"
    done = subprocess.run(
        [sys.executable, "scripts/train_cases.py", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == artefact_path().read_text(encoding="utf-8")


def test_missing_or_foreign_artefact_means_rules_alone(tmp_path: Path) -> None:
    assert load_learned(tmp_path / "absent.json") is None
    (tmp_path / "old.json").write_text(json.dumps({"feature_version": -1}), encoding="utf-8")
    assert load_learned(tmp_path / "old.json") is None


def _index() -> CaseIndex:
    samples = [
        {"w:proxyconnect", "w:eof", "s:proxyconnect", "ctx"},
        {"w:proxyconnect", "w:timeout", "s:proxyconnect", "ctx"},
        {"w:lookup", "w:timeout", "s:dns_lookup_timeout", "ctx"},
        {"w:npm", "w:err", "s:npm_error"},
    ]
    return CaseIndex.build(["a", "b", "c", "d"], ["client-proxy", "client-proxy", "client-dns", "unrelated"], samples)


def test_index_search_and_vote() -> None:
    index = _index()
    hits = index.search({"w:proxyconnect", "w:eof", "ctx"}, limit=3)
    assert [index.case_ids[i] for i, _ in hits][:2] == ["a", "b"]
    assert hits[0][1] > hits[1][1] > 0
    votes = index.vote(hits)
    assert max(votes, key=lambda k: votes[k]) == "client-proxy"
    assert abs(sum(votes.values()) - 1) < 1e-9
    assert index.search({"w:never-seen"}) == []
    assert [index.case_ids[i] for i, _ in index.search({"w:timeout"}, labels={"client-dns"})] == ["c"]


def test_search_does_not_depend_on_the_order_of_the_features() -> None:
    """Ties in document frequency are broken by name: the same cases in every process (hash seed)."""
    samples = [{f"w:f{j}" for j in range(i, i + 30)} for i in range(40)]
    index = CaseIndex.build([str(i) for i in range(40)], ["auth", "client-dns"] * 20, samples, common=1.0)
    query = [f"w:f{j}" for j in range(5, 60)]  # more features than a search looks up, many with equal frequency
    first = index.search(query)
    assert first and index.search(list(reversed(query))) == first
    assert index.search(sorted(query, key=lambda name: name[::-1])) == first


def test_a_reply_never_repeats_an_evidence_line() -> None:
    d = diagnose(
        "Error response from daemon: Get https://myreg.azurecr.io/v2/: denied: client with IP '203.0.113.7' is not "
        "allowed access. Refer https://aka.ms/acr/firewall to grant access."
    )
    lines = [e.detail for e in d.evidence]
    assert lines and len(lines) == len(set(lines))


def test_index_round_trips_through_json() -> None:
    index = _index()
    again = CaseIndex.from_dict(json.loads(json.dumps(index.to_dict())))
    query = {"w:proxyconnect", "w:timeout"}
    assert again.search(query) == index.search(query)


def test_the_packaged_artefact_loads_its_rank_tables_as_a_sort_would_make_them() -> None:
    """The artefact stores the rank tables themselves (rarest first), so loading builds none;
    they must be exactly those a sort of the postings gives (a wrong rank would silently change
    every search). Whether this process read the JSON or the marshal cache (whose flat postings
    come ranked), the tables must be the same."""
    learned = default_learned()
    assert learned is not None and learned.index.rank_ordered
    index = learned.index
    items = index.posting_items()
    unsorted = CaseIndex(postings=dict(sorted(items)), norms=index.norms, case_ids=index.case_ids, labels=index.labels)
    assert not unsorted.rank_ordered
    assert (unsorted.rank, unsorted.word_rank, unsorted.pair_rank) == (index.rank, index.word_rank, index.pair_rank)
    assert unsorted.ranked == index.ranked and unsorted.weights == index.weights


def test_an_index_in_the_earlier_format_still_loads() -> None:
    """A name -> cases artefact (with or without its order mark) loads, sorted when unmarked."""
    index = _index()
    base = {"case_ids": index.case_ids, "labels": index.labels, "norms": index.norms}
    marked = CaseIndex.from_dict({**base, "postings_order": RANK_ORDER, "postings": dict(index.posting_items())})
    unmarked = CaseIndex.from_dict({**base, "postings": dict(reversed(index.posting_items()))})
    assert marked.rank_ordered and not unmarked.rank_ordered
    assert marked.ranked == unmarked.ranked == index.ranked


def test_the_rank_tables_round_trip_to_the_same_names() -> None:
    index = _index()
    again = CaseIndex.from_dict(json.loads(json.dumps(index.to_dict())))
    assert again.posting_items() == index.posting_items()


def test_common_features_are_not_indexed() -> None:
    samples = [{"ctx", f"w:{i}"} for i in range(40)]
    index = CaseIndex.build([str(i) for i in range(40)], ["auth"] * 40, samples)
    assert "ctx" not in index.postings and "w:3" in index.postings


def test_features_read_a_bounded_part_of_huge_pastes() -> None:
    noise = "compiling module ok\n" * 50_000
    paste = noise + 'Error response from daemon: Get "https://x.azurecr.io/v2/": proxyconnect tcp: EOF\n' + noise
    focused = focus_text(paste)
    assert len(focused) <= TEXT_BUDGET + 600
    assert "proxyconnect" in focused
    assert "s:proxyconnect" in features(extract(paste))


def test_text_features_words_pairs_and_japanese() -> None:
    found = text_features("Client.Timeout exceeded イメージをプル")
    assert {"w:client", "w:timeout", "b:client_timeout", "j:イメ", "j:プル"} <= found
    assert "w:the" not in text_features("the registry")


def test_korean_and_chinese_prose_is_read_as_character_pairs() -> None:
    """Korean (Hangul) runs become character pairs like Japanese and Chinese ones: without them a
    Korean paste gave the learned layer nothing but its ASCII words."""
    assert {"j:이미", "j:실패", "j:拉取"} <= text_features("도커 이미지 풀 실패 / 拉取镜像")


@pytest.mark.parametrize("line", ["이미지 풀 실패: 권한이 없습니다", "拉取镜像失败: 连接超时", "レジストリへの接続に失敗しました"])
def test_a_long_pastes_error_line_in_korean_or_chinese_is_kept(line: str) -> None:
    """A long paste is cut to its error lines; lines that say 'failed' or 'error' in Korean or Chinese count."""
    noise = "step 12/40 : RUN make all\n" * 400
    focused = focus_text(noise + line + "\n" + noise)
    assert line in focused


def test_linear_alternative_learns_and_is_deterministic() -> None:
    samples = [{"w:a", "w:x"}, {"w:a", "w:y"}, {"w:b", "w:x"}, {"w:b", "w:y"}] * 3
    labels = ["auth", "auth", "client-dns", "client-dns"] * 3
    first = train_linear(samples, labels, epochs=15)
    assert first.to_dict() == train_linear(samples, labels, epochs=15).to_dict()
    assert max(first.predict({"w:a"}).items(), key=lambda kv: kv[1])[0] == "auth"
    assert max(first.predict({"w:b"}).items(), key=lambda kv: kv[1])[0] == "client-dns"


def test_a_feature_many_pastes_agree_on_is_not_penalised_for_being_common() -> None:
    """The L2 penalty shrinks every weight alike at every step. Shrinking a feature's weights
    each time a paste holds it (the earlier training) pressed hardest on the common features:
    a word all 303 pastes of a cause hold, and no other cause's, stayed at 82 % for that cause."""
    samples: list[set[str]] = []
    labels: list[str] = []
    for i in range(300):
        samples += [{"w:timeout", f"w:noise{i % 37}"}, {"w:denied", f"w:noise{i % 41}"}]
        labels += ["client-firewall", "auth"]
    for i in range(3):
        samples.append({"w:timeout", "w:rareword", f"w:x{i}"})
        labels.append("client-firewall")
    model = train_linear(samples, labels, **TRAINING)  # the shipped settings
    assert model.predict({"w:timeout"})["client-firewall"] > 0.95
    assert model.predict({"w:timeout"})["client-firewall"] > model.predict({"w:rareword"})["client-firewall"]


def _dense_reference(samples: list[set[str]], labels: list[str], classes: list[str], l2: float, epochs: int) -> dict[str, list[float]]:
    """The penalty written out: every weight shrinks at every step (what the scale factor stands for)."""
    import math
    import random

    n = len(classes)
    weights = {f: [0.0] * n for f in sorted({f for s in samples for f in s})}
    bias = [0.0] * n
    order = list(range(len(samples)))
    rng = random.Random(7)
    for epoch in range(epochs):
        rng.shuffle(order)
        step = 0.3 / (1.0 + epoch * 0.2)
        for i in order:
            z = [bias[k] + sum(weights[f][k] for f in sorted(samples[i])) for k in range(n)]
            exps = [math.exp(v - max(z)) for v in z]
            grad = [e / sum(exps) for e in exps]
            grad[classes.index(labels[i])] -= 1.0
            for row in weights.values():
                for k in range(n):
                    row[k] *= 1.0 - step * l2
            for k, g in enumerate(grad):
                if abs(g) > 1e-3:
                    bias[k] -= step * g
                    for f in samples[i]:
                        weights[f][k] -= step * g
    return {"bias": bias, **weights}


@pytest.mark.parametrize("l2", [2e-4, 0.5, 3.0])  # 3.0 shrinks the scale below 1e-6 and folds it into the weights
def test_the_scale_factor_shrinks_every_weight_at_every_step(l2: float) -> None:
    samples = [{"w:a", "w:x"}, {"w:a", "w:y"}, {"w:b", "w:x"}, {"w:b", "w:y"}, {"w:c"}, {"w:a", "w:c"}]
    labels = ["auth", "auth", "client-dns", "client-dns", "other-acr", "auth"]
    classes = ["auth", "client-dns", "other-acr"]
    model = train_linear(samples, labels, classes=classes, epochs=12, l2=l2, min_count=1, prune=0.0)
    reference = _dense_reference(samples, labels, classes, l2, 12)
    assert model.bias == pytest.approx(reference["bias"], rel=1e-9, abs=1e-12)
    for name in ("w:a", "w:b", "w:c", "w:x", "w:y"):
        got = [b - a for a, b in zip(model.bias, model.logits_python(model.row_ids([name])), strict=True)]
        assert got == pytest.approx(reference[name], rel=1e-9, abs=1e-12), name


PASTE = 'Error response from daemon: Get "https://contoso.azurecr.io/v2/": dial tcp: lookup contoso.azurecr.io on 10.1.0.4:53: read udp 10.1.0.9:51000->10.1.0.4:53: i/o timeout'


def test_similar_cases_are_cited_with_link_title_and_fix() -> None:
    d = diagnose(PASTE)
    assert d.reply and d.cause == "client-dns"
    assert 1 <= len(d.similar_cases) <= 2
    for case in d.similar_cases:
        assert case.url.startswith("https://") and case.title and (case.fix or case.evidence)
        assert case.cause == "client-dns"
    assert len({c.url for c in d.similar_cases}) == len(d.similar_cases)
    data = diagnosis_json(d)
    assert data["similar_cases"][0]["url"] == d.similar_cases[0].url
    assert "Similar solved cases:" in render_text(d)


@pytest.mark.parametrize("case", [c for c in default_cases() if c.label != "unrelated"][:40], ids=lambda c: c.id)
def test_a_library_paste_is_never_cited_to_itself(case) -> None:  # type: ignore[no-untyped-def]
    d = diagnose(case.text)
    assert case.id not in {c.id for c in d.similar_cases}


def test_silent_diagnoses_cite_nothing() -> None:
    d = diagnose("lunch at noon? the new place on 5th")
    assert not d.reply and d.similar_cases == []


def test_rules_alone_versus_blend() -> None:
    learned = default_learned()
    assert learned is not None
    always = dataclasses.replace(learned, sure_margin=1e9)
    ex = extract(PASTE)
    rules = classify(ex, learned=None)
    blended = classify(ex, learned=always)
    assert rules.cause == blended.cause == "client-dns"
    assert rules.similar_cases == []
    assert blended.causes[0].score > rules.causes[0].score  # the library agrees and adds to it
    assert any("case library" in r for r in blended.causes[0].reasons)


def test_sure_rules_skip_the_vote_but_still_cite() -> None:
    ex = extract(PASTE)
    rules = classify(ex, learned=None)
    margin = rules.causes[0].score - rules.causes[1].score
    learned = default_learned()
    assert learned is not None and margin >= learned.sure_margin
    d = classify(ex)
    assert d.causes[0].score == rules.causes[0].score
    assert d.similar_cases and not classify(ex, cite=False).similar_cases


def test_ranks_of_an_extraction_are_the_indexed_features() -> None:
    """The fast query (no feature names built) looks up exactly what ``features`` would."""
    learned = default_learned()
    assert learned is not None
    index = learned.index
    texts = [case.text for case in default_cases()] + [PASTE, "イメージのプルに失敗しました x509", "ア"]
    for text in texts:
        ex = extract(text)
        ranks = {f: r for f in features(ex) if (r := index.rank_of(f)) is not None}
        japanese = sorted(r for f, r in ranks.items() if f.startswith("j:"))[:JAPANESE_QUERY]
        expected = sorted({r for f, r in ranks.items() if not f.startswith("j:")} | set(japanese))
        assert index.ranks(ex) == expected, text[:80]
        assert learned.votes_for(ex) == learned.votes(features(ex))


def test_row_tables_hold_every_feature_under_its_kind() -> None:
    """Words and word pairs are keyed by their text, the rest by name; every row exactly once."""
    learned = default_learned()
    assert learned is not None and learned.linear is not None
    model = learned.linear
    words, pairs, others = model.row_tables()
    expected: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
    for row, name in enumerate(model.features):
        if name.startswith("w:"):
            expected[0][name[2:]] = row
        elif name.startswith("b:"):
            expected[1][name[2:]] = row
        else:
            expected[2][name] = row
    assert (words, pairs, others) == expected
    assert others and words and pairs


def test_one_scan_finds_the_rows_the_model_knows() -> None:
    """``scan`` reads a paste once for both halves: its rows are the model's rows of ``features``."""
    learned = default_learned()
    assert learned is not None and learned.linear is not None
    texts = [case.text for case in default_cases()] + [PASTE, "イメージのプルに失敗しました x509", "ア"]
    for text in texts:
        ex = extract(text)
        ranks, rows = scan(ex, learned.index, learned.linear)
        assert rows == learned.linear.row_ids(features(ex)), text[:80]
        assert ranks == learned.index.ranks(ex), text[:80]


def test_japanese_character_pairs_take_few_places_in_a_query() -> None:
    learned = default_learned()
    assert learned is not None
    ex = extract("イメージをプッシュまたはプルできず、エラー dial tcp: lookup myregistry.azurecr.io が発生する")
    names = {r: name for name, r in learned.index.rank.items()}
    names.update({r: "w:" + word for word, r in learned.index.word_rank.items()})
    names.update({r: "b:" + pair for pair, r in learned.index.pair_rank.items()})
    pairs = [r for r in learned.index.ranks(ex) if names[r].startswith("j:")]
    assert 0 < len(pairs) <= JAPANESE_QUERY
    assert any(not names[r].startswith("j:") for r in learned.index.ranks(ex))


def test_the_vote_mixes_the_nearest_cases_and_the_linear_model() -> None:
    """Half each: a cause's vote is half its share of the nearest cases plus half the model's probability."""
    index = _index()
    samples = [{"w:proxyconnect", "w:eof"}, {"w:proxyconnect", "w:timeout"}, {"w:lookup", "w:timeout"}, {"w:npm"}]
    model = train_linear(samples * 3, ["client-proxy", "client-proxy", "client-dns", "unrelated"] * 3, epochs=15)
    paste = {"w:proxyconnect", "w:timeout", "s:proxyconnect", "ctx"}
    nearest, hits = Learned(index=index).votes(paste)
    mixed, same_hits = Learned(index=index, linear=model, linear_weight=0.5).votes(paste)
    assert same_hits == hits and nearest
    probabilities = model.predict(paste)
    assert set(mixed) == set(probabilities) | set(nearest)
    for cause, vote in mixed.items():
        assert vote == 0.5 * probabilities.get(cause, 0.0) + 0.5 * nearest.get(cause, 0.0)
    assert max(mixed, key=mixed.__getitem__) == "client-proxy"
    assert abs(sum(mixed.values()) - 1.0) < 1e-9


def test_the_packaged_artefact_carries_the_linear_model() -> None:
    packaged = default_learned()
    assert packaged is not None and packaged.linear is not None
    assert packaged.linear_weight == LINEAR_WEIGHT
    from bot.engine.knowledge import default_knowledge

    assert packaged.linear.classes == sorted(default_knowledge().cards)
    again = LinearModel.from_dict(json.loads(json.dumps(packaged.linear.to_dict())))
    assert again == packaged.linear
    paste = features(extract('Error response from daemon: Get "https://contoso.azurecr.io/v2/": proxyconnect tcp: EOF'))
    assert again.predict(paste) == packaged.linear.predict(paste)


def test_the_learned_vote_does_not_depend_on_the_hash_seed() -> None:
    """Sets of feature names iterate in a per-process order; the sums must not follow it."""
    script = (
        "import json; from bot.engine.extract import extract; from bot.engine.learned import default_learned\n"
        "ex = extract('Get https://contoso.azurecr.io/v2/: net/http: request canceled (Client.Timeout exceeded "
        "while awaiting headers) behind our proxy')\n"
        "votes, hits = default_learned().votes_for(ex)\n"
        "print(json.dumps([sorted(votes.items()), hits]))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1, outputs
