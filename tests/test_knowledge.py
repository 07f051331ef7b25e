"""The knowledge base: one valid card per taxonomy id, and clear errors for bad cards."""

import re
import shutil
from pathlib import Path

import pytest

from bot.engine.knowledge import KnowledgeError, load_knowledge

TAXONOMY_IDS = {
    "client-dns", "registry-not-found", "client-firewall", "client-firewall-data-endpoint", "client-proxy",
    "tls-interception", "registry-tls-config", "registry-public-access", "registry-private-endpoint",
    "registry-resource-provider", "service-integration", "aks-pull", "auth", "client-docker-daemon",
    "other-acr", "unrelated",
}  # fmt: skip
KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def test_one_card_per_taxonomy_id() -> None:
    kb = load_knowledge(taxonomy_ids=TAXONOMY_IDS)
    assert set(kb.cards) == TAXONOMY_IDS


def test_shared_taxonomy_matches_when_available() -> None:
    taxonomy = Path(__file__).resolve().parents[2] / "shared" / "taxonomy.md"
    if not taxonomy.exists():
        pytest.skip("shared/taxonomy.md not beside the checkout")
    ids = set(re.findall(r"^\| `([a-z-]+)` \|", taxonomy.read_text(), re.MULTILINE))
    assert ids == TAXONOMY_IDS


def test_every_card_is_bilingual_with_fix_and_docs() -> None:
    kb = load_knowledge()
    for card in kb.cards.values():
        assert card.title.en and card.title.ja and card.summary.ja
        if card.id == "unrelated":
            continue
        assert card.fix, card.id
        assert card.docs, card.id
        assert any(
            "{registry}" in (s.command or "") + s.text.en
            or "{login_server}" in (s.command or "") + s.text.en
            or "{host}" in (s.command or "") + s.text.en
            for s in card.fix
        ), card.id
        for step in card.fix:
            assert step.text.ja


def test_every_guide_symptom_is_covered() -> None:
    kb = load_knowledge()
    covered = " ".join(s for c in kb.cards.values() for s in c.symptoms).lower()
    for symptom in [
        "dial tcp: lookup", "client.timeout exceeded", "could not connect to the registry login server",
        "aks", "proxyconnect tcp: eof", "failed to save firewall", "portal or cli cannot show",
        "cannot add or change vnet", "acr tasks", "defender for cloud", "host is not reachable",
    ]:  # fmt: skip
        assert symptom in covered, symptom


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def test_bad_field_names_the_file_and_field(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    card = directory / "auth.yaml"
    card.write_text(card.read_text().replace("score: 5\n", "score: lots\n", 1))
    with pytest.raises(KnowledgeError, match=r"auth\.yaml: field 'recognise\.\d+\.score'"):
        load_knowledge(directory)


def test_unknown_signal_is_rejected(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    card = directory / "client-dns.yaml"
    card.write_text(card.read_text().replace("signals: [dns_lookup_timeout]", "signals: [dns_lookup_timout]", 1))
    with pytest.raises(KnowledgeError, match=r"client-dns\.yaml: .*unknown signal 'dns_lookup_timout'"):
        load_knowledge(directory)


def test_unknown_live_finding_is_rejected(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    card = directory / "client-proxy.yaml"
    card.write_text(card.read_text().replace("proxy.eof: 5", "proxy.oef: 5", 1))
    with pytest.raises(KnowledgeError, match=r"client-proxy\.yaml: field 'live\.confirm'"):
        load_knowledge(directory)


def test_id_must_match_file_and_taxonomy(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / "auth.yaml").rename(directory / "authn.yaml")
    with pytest.raises(KnowledgeError, match="does not match the file name"):
        load_knowledge(directory)


def test_missing_card_is_reported(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / "other-acr.yaml").unlink()
    with pytest.raises(KnowledgeError, match="missing \\['other-acr'\\]"):
        load_knowledge(directory, taxonomy_ids=TAXONOMY_IDS)


def test_new_cause_is_a_card_edit(tmp_path: Path) -> None:
    """A new phrasing recognised only by editing YAML: no code changes."""
    from bot.engine.classify import classify
    from bot.engine.extract import extract

    directory = _copy(tmp_path)
    text = "Error response from daemon: Get https://myreg.azurecr.io/v2/: quantum flux capacitor misaligned"
    kb = load_knowledge(directory)
    assert classify(extract(text, kb), kb=kb).cause != "other-acr"
    signals = directory / "signals.yaml"
    signals.write_text(signals.read_text() + '\n- id: flux\n  any: ["flux capacitor misaligned"]\n')
    card = directory / "other-acr.yaml"
    card.write_text(
        card.read_text().replace(
            "recognise:\n",
            "recognise:\n  - when: {signals: [flux]}\n    score: 9\n    reason: {en: flux, ja: flux}\n",
            1,
        )
    )
    kb = load_knowledge(directory)
    assert classify(extract(text, kb), kb=kb).cause == "other-acr"


def test_a_signal_that_masks_an_unknown_signal_is_rejected(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    signals = directory / "signals.yaml"
    signals.write_text(signals.read_text().replace("masks: [error_marker]", "masks: [error_markr]", 1))
    with pytest.raises(KnowledgeError, match=r"signals\.yaml: signal 'error_reference' masks unknown signals \['error_markr'\]"):
        load_knowledge(directory)


def _quiet_the_bare_5xx_rule(directory: Path, quiet_with: str) -> None:
    card = directory / "other-acr.yaml"
    text = card.read_text()
    assert "quiet_with: [registry_status_5xx, login_attempt_5xx]" in text
    card.write_text(text.replace("quiet_with: [registry_status_5xx, login_attempt_5xx]", f"quiet_with: {quiet_with}", 1))


def test_quiet_with_must_name_a_known_signal(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    _quiet_the_bare_5xx_rule(directory, "[registry_status_5xxx]")
    with pytest.raises(KnowledgeError, match=r"other-acr\.yaml: field 'recognise\.\d+\.quiet_with': unknown signal 'registry_status_5xxx'"):
        load_knowledge(directory)


def test_quiet_with_must_name_a_signal_another_rule_of_the_card_says(tmp_path: Path) -> None:
    """A reason may only be left out when another rule of the same card says it instead."""
    directory = _copy(tmp_path)
    _quiet_the_bare_5xx_rule(directory, "[dns_no_such_host]")
    with pytest.raises(KnowledgeError, match=r"no other rule of this card requires 'dns_no_such_host'"):
        load_knowledge(directory)


def test_a_quietened_reason_still_counts_and_shows_when_the_better_rule_does_not_hold(tmp_path: Path) -> None:
    """``quiet_with`` hides a reason only when the more precise rule held: a bare 5xx keeps its line,
    a 5xx in docker's words shows one line, and removing ``quiet_with`` changes no score."""
    from bot.engine.classify import classify
    from bot.engine.extract import extract

    bare = "Get https://myreg.azurecr.io/v2/: 503 Service Unavailable"
    worded = "Error response from daemon: Get https://quay.io/v2/acme/tool/manifests/1.2: received unexpected HTTP status: 502 Bad Gateway"
    kb = load_knowledge(KNOWLEDGE)
    bare_d, worded_d = (classify(extract(t, kb), kb=kb, learned=None) for t in (bare, worded))
    assert "The registry answered with a server error (5xx)." in bare_d.causes[0].reasons
    assert "The registry answered with a server error (5xx)." not in worded_d.causes[0].reasons
    directory = _copy(tmp_path)
    card = directory / "other-acr.yaml"
    card.write_text(card.read_text().replace("    quiet_with: [registry_status_5xx, login_attempt_5xx]\n", "", 1))
    loud = load_knowledge(directory)
    loud_d = classify(extract(worded, loud), kb=loud, learned=None)
    assert "The registry answered with a server error (5xx)." in loud_d.causes[0].reasons
    assert loud_d.causes[0].score == worded_d.causes[0].score


def test_quiet_with_on_a_rule_that_shows_no_reason_is_refused(tmp_path: Path) -> None:
    """Only positive rules show a reason; quieting a negative one would be a no-op that reads like a rule."""
    directory = _copy(tmp_path)
    card = directory / "other-acr.yaml"
    text = card.read_text()
    old = "    score: 3.5\n    quiet_with: [registry_status_5xx, login_attempt_5xx]\n"
    assert old in text
    card.write_text(text.replace(old, "    score: -1\n    quiet_with: [registry_status_5xx, login_attempt_5xx]\n", 1))
    with pytest.raises(KnowledgeError, match=r"other-acr\.yaml: field 'recognise\.\d+\.quiet_with': a rule that shows no reason"):
        load_knowledge(directory)


def test_a_signal_that_implies_an_unknown_signal_is_rejected(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    signals = directory / "signals.yaml"
    text = signals.read_text()
    assert "implies: [registry_op_failed]" in text
    signals.write_text(text.replace("implies: [registry_op_failed]", "implies: [registry_op_faild]", 1))
    with pytest.raises(KnowledgeError, match=r"signal 'registry_login_failed' implies unknown signals \['registry_op_faild'\]"):
        load_knowledge(directory)


def test_implications_do_not_chain(tmp_path: Path) -> None:
    """One level only: a reader of signals.yaml sees everything a signal adds on its own line."""
    directory = _copy(tmp_path)
    signals = directory / "signals.yaml"
    text = signals.read_text().replace(
        "- id: registry_op_failed\n", "- id: registry_op_failed\n  implies: [registry_failure_phrase]\n", 1
    )
    signals.write_text(text)
    with pytest.raises(KnowledgeError, match=r"signal 'registry_login_failed' implies \['registry_op_failed'\], which imply others"):
        load_knowledge(directory)


def test_an_implied_signal_is_added_in_vocabulary_order_and_only_when_its_source_holds() -> None:
    """A login to a registry said to fail is also a failed registry operation, so every rule that takes
    ``registry_op_failed`` takes it; a login to something else implies nothing."""
    from bot.engine.extract import extract

    kb = load_knowledge(KNOWLEDGE)
    registry = extract("since this morning I can't log in to our registry, the password was rotated", kb)
    assert {"registry_login_failed", "registry_op_failed"} <= set(registry.facts.signals)
    position = {s.id: i for i, s in enumerate(kb.signals)}
    assert registry.facts.signals == sorted(registry.facts.signals, key=position.__getitem__)
    other = extract("since this morning I can't log in to jira, the password was rotated", kb)
    assert "registry_login_failed" not in other.facts.signals
    assert "registry_op_failed" not in other.facts.signals


def test_an_implied_signal_brings_its_registry_context(tmp_path: Path) -> None:
    """An implied signal holds as if it had been found, so a signal with no registry context of its own
    that implies one with context makes the paste a registry paste."""
    from bot.engine.extract import extract

    directory = _copy(tmp_path)
    signals = directory / "signals.yaml"
    signals.write_text(
        signals.read_text() + '\n- id: flux_registry_stalled\n  any: ["flux capacitor stalled"]\n  implies: [registry_op_failed]\n'
    )
    kb = load_knowledge(directory)
    assert not kb.signal_by_id["flux_registry_stalled"].registry_context
    assert kb.signal_by_id["registry_op_failed"].registry_context
    extraction = extract("the flux capacitor stalled again", kb)
    assert "registry_op_failed" in extraction.facts.signals
    assert extraction.registry_context
