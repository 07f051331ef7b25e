"""The case library: every line valid, loading fails clearly on a bad line, any subset of files works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.engine.cases import (
    CaseError,
    case_dict,
    cases_dir,
    default_cases,
    library_digest,
    load_cases,
    locate_line,
    packaged_case,
)
from bot.engine.knowledge import default_knowledge

LABELS = set(default_knowledge().cards)


def _line(**overrides: object) -> str:
    item: dict[str, object] = {
        "id": "t-1",
        "text": "Error response from daemon: Get https://x.azurecr.io/v2/: i/o timeout",
        "label": "client-firewall",
        "source": "https://github.com/example/repo/issues/1",
        "title": "pull times out",
        "fix": "open 443",
        "lang": "en",
    }
    item.update(overrides)
    return json.dumps(item)


def test_packaged_library_is_valid_and_unique() -> None:
    cases = load_cases(labels=LABELS)
    assert len(cases) >= 256
    assert len({c.id for c in cases}) == len(cases)
    assert {c.file for c in cases} >= {"dev.jsonl"}
    assert all(c.source.startswith("https://") for c in cases)
    assert all(c.lang for c in cases)


def test_dev_cases_keep_the_shared_sample_verbatim() -> None:
    found = [p / "shared" / "eval" / "dev.jsonl" for p in Path(__file__).resolve().parents[1:4]]
    shared = next((p for p in found if p.exists()), None)
    if shared is None:
        pytest.skip("shared sample not on this machine")
    originals = {json.loads(line)["id"]: json.loads(line) for line in shared.read_text().splitlines() if line.strip()}
    ours = {c.id: c for c in default_cases() if c.id.startswith("dev-")}
    assert len(ours) == len(originals)
    for key, row in originals.items():
        case = ours[f"dev-{key}"]
        assert (case.text, case.label, case.source) == (row["text"], row["label"], row["source"])
        assert case.label == "unrelated" or case.fix, case.id


def test_registry_cases_say_what_fixed_them_or_why() -> None:
    for case in default_cases():
        if case.label != "unrelated":
            assert case.fix or case.evidence, case.id


def test_only_dev_present(tmp_path: Path) -> None:
    (tmp_path / "dev.jsonl").write_text(_line() + "\n\n" + _line(id="t-2") + "\n", encoding="utf-8")
    assert [c.id for c in load_cases(tmp_path, labels=LABELS)] == ["t-1", "t-2"]


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    assert load_cases(tmp_path) == []
    assert load_cases(tmp_path / "absent") == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "b.jsonl:2: not valid JSON"),
        ("[1, 2]", "b.jsonl:2: expected a JSON object"),
        (_line(text=""), "b.jsonl:2: field 'text' must be a non-empty string"),
        (_line(label="dns"), "b.jsonl:2: field 'label': unknown cause 'dns'"),
        (_line(source="github issue 12"), "b.jsonl:2: field 'source' must be the URL"),
        (_line(fix=3), "b.jsonl:2: field 'fix' must be a string or null"),
        (_line(confidence="sure"), "b.jsonl:2: field 'confidence' must be one of"),
        (_line(id="a-1"), "b.jsonl:2: duplicate id 'a-1' (first at a.jsonl:1)"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "a.jsonl").write_text(_line(id="a-1") + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(_line(id="b-1") + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CaseError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("'", "'")):
        load_cases(tmp_path, labels=LABELS)


def test_digest_follows_content(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(_line() + "\n", encoding="utf-8")
    first = library_digest(tmp_path)
    assert library_digest(tmp_path) == first
    (tmp_path / "b.jsonl").write_text(_line(id="t-2") + "\n", encoding="utf-8")
    second = library_digest(tmp_path)
    (tmp_path / "a.jsonl").write_text(_line(fix="other") + "\n", encoding="utf-8")
    assert len({first, second, library_digest(tmp_path)}) == 3


def test_case_dict_for_replies() -> None:
    case = load_cases(cases_dir(), labels=LABELS)[0]
    cited = case_dict(case, 0.41234)
    assert cited["url"] == case.source and cited["title"] == case.title and cited["similarity"] == 0.412


def test_a_cited_case_is_found_without_parsing_the_whole_library() -> None:
    """``packaged_case`` (what a reply cites) returns exactly the library's case for every id."""
    for case in default_cases():
        assert packaged_case(case.id) == case
    assert packaged_case("no-such-case") is None


def test_the_id_locator_reads_the_lines_head_only() -> None:
    """Only a line that starts with the id counts: a text quoting ``{"id": ...}`` is no match."""
    first = json.dumps({"id": "en-0001", "text": 'body {"id": "en-0002", "x": 1}', "label": "auth"})
    second = json.dumps({"text": '{"id": "en-0003"}', "id": "en-0003"})  # another key order: the fallback's
    third = json.dumps({"id": "en-0002", "text": "the real one", "label": "auth"})
    files = (("a.jsonl", f"{first}\n\n{second}\n".encode()), ("b.jsonl", f"{third}\r\n".encode()))
    assert locate_line("en-0001", files) == ("a.jsonl:1", first)
    where, line = locate_line("en-0002", files) or ("", "")
    assert where == "b.jsonl:1" and json.loads(line)["text"] == "the real one"
    assert locate_line("en-0003", files) is None
    assert locate_line("en-000", files) is None  # a prefix of an id is not the id
