"""Start-up: each subcommand imports only what it uses; the knowledge base loads from its cache.

Speed itself is measured by ``benchmarks/startup.py``; these tests hold the properties that
make it fast and safe: no heavy import on the offline path, a cache that is never stale,
never required to be writable, and ignored when it is damaged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
#: Top-level packages the offline diagnosis must not import.
HEAVY = ("pydantic", "pydantic_settings", "azure", "slack_sdk", "slack_bolt", "sqlalchemy", "httpx", "aiohttp", "yaml")


def _modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=True,
    )
    return set(json.loads(out.stdout.decode().strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_offline_diagnosis_imports_no_sdk_slack_database_http_or_settings() -> None:
    from bot.engine.knowledge import default_knowledge

    default_knowledge()  # the packaged cache exists (or is written now), as after an install
    for args in (
        ["diagnose", "dial tcp: lookup myreg.azurecr.io on 10.0.0.10:53: no such host"],
        ["diagnose", "--json", "denied: client with IP '203.0.113.9' is not allowed access"],
        ["cards"],
        ["--help"],
    ):
        code = (
            "import contextlib, io\nfrom bot.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    with contextlib.suppress(SystemExit):\n        main({args!r})"
        )
        assert _heavy(_modules_after(code)) == [], args


def test_jsonl_stream_imports_none_of_them_either() -> None:
    code = (
        "import io, contextlib\nfrom bot.cli.main import main\n"
        "class In(io.TextIOWrapper):\n    def isatty(self): return False\n"
        "data = b'{\"id\": 1, \"text\": \"proxyconnect tcp: EOF\"}\\n'\n"
        "main(['diagnose', '--jsonl'], stdin=In(io.BytesIO(data), encoding='utf-8'), stdout=io.StringIO())"
    )
    assert _heavy(_modules_after(code)) == []


def test_help_lists_every_subcommand_with_the_help_its_module_registers() -> None:
    import argparse
    import importlib

    from bot.cli.main import LAZY_COMMANDS, build_parser

    lazy_help = {
        action.dest: action.help
        for action in build_parser()._subparsers._group_actions[0]._choices_actions  # type: ignore[union-attr]
    }
    for name, (module_name, function, help_text) in LAZY_COMMANDS.items():
        real = argparse.ArgumentParser().add_subparsers()
        getattr(importlib.import_module(module_name), function)(real)
        registered = {action.dest: action.help for action in real._choices_actions}
        assert registered[name] == help_text == lazy_help[name], name


def test_a_lazy_subcommand_is_parsed_by_its_own_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "probe", "--help"], capture_output=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0 and b"--data-region" in out.stdout


# --- the compiled knowledge cache -----------------------------------------------------------------


@pytest.fixture()
def cards(tmp_path: Path) -> Path:
    directory = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, directory, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return directory


def _caches(directory: Path) -> list[Path]:
    return sorted((directory / "__pycache__").glob("knowledge-*.json"))


def _isolated(tmp_path: Path) -> dict[str, str]:
    """No user-level cache: only the cards' own __pycache__ is used."""
    return {"ACRCHECK_CACHE_DIR": "", "XDG_CACHE_HOME": str(tmp_path / "xdg")}


def test_cache_is_written_once_and_then_loaded_without_validation(cards: Path, tmp_path: Path) -> None:
    code = f"from bot.engine.knowledge import load_knowledge\nkb = load_knowledge({str(cards)!r})\n"
    first = _modules_after(code, _isolated(tmp_path))
    assert "pydantic" in first  # validated on the first load
    assert len(_caches(cards)) == 1
    second = _modules_after(code, _isolated(tmp_path))
    assert _heavy(second) == []  # neither pydantic nor yaml: the validated copy was used
    assert len(_caches(cards)) == 1


def test_a_changed_card_is_never_read_from_a_stale_cache(cards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.engine.knowledge import load_knowledge

    monkeypatch.setenv("ACRCHECK_CACHE_DIR", "")
    before = load_knowledge(cards)
    card = cards / "auth.yaml"
    card.write_text(card.read_text().replace("score: 5\n", "score: 6\n", 1))
    after = load_knowledge(cards)
    assert [r.score for r in after.card("auth").recognise] != [r.score for r in before.card("auth").recognise]
    assert len(_caches(cards)) == 1  # the new content's; the old one (never read again) was deleted


def test_old_caches_are_deleted_but_not_other_folders_caches(
    cards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache file piled up per card edit; two card folders sharing a cache directory keep their own."""
    from bot.engine.knowledge import load_knowledge

    shared = tmp_path / "shared-cache"
    monkeypatch.setenv("ACRCHECK_CACHE_DIR", str(shared))
    other = tmp_path / "other-knowledge"
    shutil.copytree(cards, other)
    load_knowledge(other)
    (other_cache,) = shared.glob("knowledge-*.json")
    unkeyed = shared / ("knowledge-" + "0" * 32 + ".json")  # the name before caches were keyed by folder
    unkeyed.write_text("{}")
    foreign = shared / ("knowledge-" + "ab" * 6 + "-" + "1" * 32 + ".json")  # a third folder's, by its key
    foreign.write_text("{}")
    unrelated = shared / "cases-0123.json"
    unrelated.write_text("{}")
    card = cards / "auth.yaml"
    for score in (6, 7, 8):
        card.write_text(card.read_text().replace(f"score: {score - 1}\n", f"score: {score}\n", 1))
        load_knowledge(cards)
        mine = [p for p in shared.glob("knowledge-*.json") if p not in (other_cache, foreign)]
        assert len(mine) == 1, sorted(p.name for p in shared.iterdir())
    assert other_cache.exists() and foreign.exists() and unrelated.exists()
    assert not unkeyed.exists()
    assert load_knowledge(other).cards  # still read from its own cache


def test_a_cache_that_cannot_be_deleted_is_left_and_loading_goes_on(
    cards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.engine.knowledge import load_knowledge

    monkeypatch.setenv("ACRCHECK_CACHE_DIR", "")
    load_knowledge(cards)
    (first,) = _caches(cards)
    first.unlink()
    first.mkdir()  # a directory under a cache's name: unlink() fails
    card = cards / "auth.yaml"
    card.write_text(card.read_text().replace("score: 5\n", "score: 6\n", 1))
    assert load_knowledge(cards).card("auth")
    assert first.is_dir() and len(_caches(cards)) == 2


def test_a_bad_card_still_fails_with_its_file_and_field_when_a_cache_exists(cards: Path) -> None:
    from bot.engine.knowledge import KnowledgeError, load_knowledge

    load_knowledge(cards)
    card = cards / "auth.yaml"
    card.write_text(card.read_text().replace("score: 5\n", "score: lots\n", 1))
    with pytest.raises(KnowledgeError, match=r"auth\.yaml: field 'recognise\.\d+\.score'"):
        load_knowledge(cards)


def test_nothing_needs_to_be_writable(cards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.engine.knowledge import load_knowledge

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    (cards / "__pycache__").write_text("not a directory either")
    monkeypatch.setenv("ACRCHECK_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "xdg"))
    kb = load_knowledge(cards)  # built in memory
    assert "auth" in kb.cards and kb.scanner.scan("no such host")


def test_a_damaged_cache_is_ignored_and_rebuilt(cards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.engine.knowledge import load_knowledge

    monkeypatch.setenv("ACRCHECK_CACHE_DIR", "")
    expected = sorted(load_knowledge(cards).cards)
    (cache,) = _caches(cards)
    for damage in ("{not json", json.dumps({"format": 1, "digest": "x"}), ""):
        cache.write_text(damage)
        assert sorted(load_knowledge(cards).cards) == expected
    data = json.loads(cache.read_text())
    data["cards"] = {"auth": {"id": "auth"}}  # right name and digest, wrong content
    cache.write_text(json.dumps(data))
    assert sorted(load_knowledge(cards).cards) == expected


def test_the_cached_knowledge_equals_a_fresh_validation() -> None:
    from bot.engine.knowledge import compile_knowledge, default_knowledge, load_knowledge, packaged_knowledge_dir

    cached = default_knowledge()
    fresh = load_knowledge(use_cache=False)
    assert cached.cards == fresh.cards
    assert [s.id for s in cached.signals] == [s.id for s in fresh.signals]
    assert cached.scanner.keywords == fresh.scanner.keywords
    validated = compile_knowledge(packaged_knowledge_dir())["signals"]
    assert set(cached.scanner.keywords) == {k for s in validated for k in (*s["any"], *s["all"]) if k}


def test_the_scanner_finds_exactly_the_keywords_a_substring_search_finds() -> None:
    """The automaton must report every keyword that occurs, overlapping and nested ones included, and no other."""
    from bot.engine.knowledge import default_knowledge

    scanner = default_knowledge().scanner
    texts = [json.loads(line)["text"] for name in ("heldout", "heldout2", "heldout3")
             for line in (ROOT / "tests" / "corpus" / f"{name}.jsonl").read_text().splitlines() if line.strip()]  # fmt: skip
    texts += [
        "dial tcp: lookup myreg.azurecr.io: no such host",  # nested: "no such host" inside a longer phrase
        "イメージをプッシュまたはプルできず、エラー dial tcp: lookup myregistry.azurecr.io が発生する",
        "",
    ]
    found_any = 0
    for text in texts:
        flat = text.lower().replace("\n", "")
        expected = {word for word in scanner.keywords if word in flat}
        assert scanner.scan(flat) == expected
        found_any += bool(expected)
    assert found_any > 100


def test_an_empty_vocabulary_finds_nothing() -> None:
    from bot.engine.knowledge import KeywordScanner

    assert KeywordScanner(set()).scan("no such host") == set()
    assert KeywordScanner({"host"}).scan("no such host") == {"host"}


def test_runtime_classes_carry_every_field_of_the_schema() -> None:
    """A field added to a card or signal in the schema must reach the engine too."""
    from bot.engine import knowledge, knowledge_schema

    for name in ("LocalText", "Condition", "Rule", "LiveRules", "FixStepTemplate", "Card", "Signal"):
        schema = set(getattr(knowledge_schema, name).model_fields)
        runtime = {f.name for f in dataclasses.fields(getattr(knowledge, name))}
        assert schema == runtime, name


def test_warming_compiles_every_lazily_compiled_signal_pattern(cards: Path) -> None:
    """``acrcheck serve`` warms the knowledge base before it reports ready: no signal regex may be
    left to compile on the first request."""
    from bot.engine.knowledge import load_knowledge

    kb = load_knowledge(cards)
    with_pattern = [s for s in kb.signals if s.pattern_source]
    assert with_pattern and all(s._pattern is None for s in with_pattern)  # lazy until needed
    kb.warm()
    assert all(s._pattern is not None for s in with_pattern)
