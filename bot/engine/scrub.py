"""The last line of defence: every string of a diagnosis passes the redactor before it leaves.

The extractor reads facts from redacted text, so a secret should never get this far. But
facts are cut out of text by patterns, glued back together (a proxy and its port), and live
checks add details of their own (a proxy URL from settings, an answer from a server). So the
facade runs every answer through here:

* every string that carries the user's or a server's words (facts, live evidence) is checked
  by shape with :func:`bot.engine.redact.redact_found`;
* every string of the answer (reasons, fixes, notes too) is checked for the secret values
  found in the paste, which are masked wherever they reappear.

Reasons, fixes and titles are the cards' templates filled with fact values, so once the facts
are clean only a value found in the paste could still leak through them; matching the shape
rules against our own fix commands (``--password-stdin``, ``az acr login --expose-token``)
would only corrupt them. Anything masked here is reported like any other secret, so the
author is still told to rotate it. Cost: the strings are joined and checked once; only when
that finds something are they redacted one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from bot.engine.models import Diagnosis, Evidence, Facts
from bot.engine.redact import MASK, mask_values, redact_found, worth_remasking

#: Joins leaves for the one-pass check; no rule crosses a blank line with a NUL in it.
_JOIN = "\n\x00\n"
_NOTE = {
    "en": "A secret was found in the paste and redacted; rotate it.",
    "ja": "貼り付けに秘密情報が含まれていたため伏せました。すぐにローテーションしてください。",
}


def secret_note(lang: str) -> str:
    return _NOTE["ja" if lang == "ja" else "en"]


#: Facts that hold our own vocabulary, not the user's words.
_OWN_FACTS = frozenset({"secrets", "signals", "tool", "cloud"})


def _fact_strings(facts: Facts) -> list[str]:
    out: list[str] = []
    for name in facts.__slots__:
        if name in _OWN_FACTS:
            continue
        value = getattr(facts, name)
        if not value:
            continue
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    out.append(item)
                elif hasattr(item, "__slots__"):  # HostFact, IpFact
                    for key in item.__slots__:
                        field_value = getattr(item, key)
                        if isinstance(field_value, str):
                            out.append(field_value)
        elif isinstance(value, dict):
            out += _nested_strings(value)
    return out


def _nested_strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _nested_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _nested_strings(item)


def _user_leaves(diagnosis: Diagnosis) -> list[str]:
    """Strings made of the user's or a server's words: facts and live evidence."""
    out = list(_fact_strings(diagnosis.facts))
    for item in diagnosis.evidence:
        if item.check == "text":
            continue  # a reason rendered from a card template and fact values
        out += [item.target, item.detail]
        if item.data:
            out += _nested_strings(item.data)
    return out


def _all_leaves(diagnosis: Diagnosis) -> list[str]:
    out = _user_leaves(diagnosis)
    for cause in diagnosis.causes:
        out += cause.reasons + cause.supported_by + cause.contradicted_by
    for step in diagnosis.fix:
        out.append(step.text)
        if step.command:
            out.append(step.command)
    for item in diagnosis.evidence:
        out += [item.target, item.vantage, item.detail]
    out += diagnosis.notes
    return out


def scrub_diagnosis(diagnosis: Diagnosis, values: list[str] | None = None) -> Diagnosis:
    """Redact every output string of ``diagnosis`` in place (and return it).

    ``values`` are the secrets found in the paste (see ``Extraction.secret_values``): they
    are masked wherever they appear, whatever the shape around them.
    """
    values = [v for v in (values or []) if worth_remasking(v)]
    user = _JOIN.join(_user_leaves(diagnosis))
    found = redact_found(user)
    echoed: list[str] = []
    if values:
        every = _JOIN.join(_all_leaves(diagnosis))
        echoed = [v for v in values if v in every]
    if not echoed and found.text == user:
        return diagnosis
    kinds = set(found.kinds)
    if echoed:
        kinds.add("echoed-secret")
    masked: list[str] = [*values, *found.values]
    shapes = found.text != user

    def clean(text: str) -> str:
        if not text:
            return text
        return mask_values(text, masked) if masked else text

    def clean_user(text: str) -> str:
        if not text:
            return text
        result = redact_found(text).text if shapes else text
        return mask_values(result, masked) if masked else result

    _apply(diagnosis, clean, clean_user)
    if diagnosis.redacted_text and masked:
        diagnosis.redacted_text = mask_values(diagnosis.redacted_text, masked)
    new = sorted(kinds - set(diagnosis.facts.secrets))
    if new:
        diagnosis.facts.secrets = sorted(set(diagnosis.facts.secrets) | kinds)
    note = secret_note(diagnosis.lang)
    if diagnosis.facts.secrets and note not in diagnosis.notes:
        diagnosis.notes.append(note)
    return diagnosis


def _apply(diagnosis: Diagnosis, clean: Callable[[str], str], clean_user: Callable[[str], str]) -> None:
    facts = diagnosis.facts
    for name in facts.__slots__:
        if name in _OWN_FACTS:
            continue
        value = getattr(facts, name)
        if isinstance(value, str):
            setattr(facts, name, clean_user(value))
        elif isinstance(value, list):
            for item in value:
                if hasattr(item, "__slots__"):  # HostFact, IpFact
                    for key in item.__slots__:
                        if isinstance(getattr(item, key), str):
                            setattr(item, key, clean_user(getattr(item, key)))
            if value and isinstance(value[0], str):
                setattr(facts, name, [clean_user(v) for v in value])
        elif isinstance(value, dict):
            setattr(facts, name, _clean_nested(value, clean_user))
    for cause in diagnosis.causes:
        cause.reasons = [clean(r) for r in cause.reasons]
        cause.supported_by = [clean(r) for r in cause.supported_by]
        cause.contradicted_by = [clean(r) for r in cause.contradicted_by]
    for step in diagnosis.fix:
        step.text = clean(step.text)
        if step.command:
            step.command = clean(step.command)
    diagnosis.evidence = [
        _clean_evidence(item, clean if item.check == "text" else clean_user) for item in diagnosis.evidence
    ]
    diagnosis.notes = [clean(n) for n in diagnosis.notes]


def _clean_evidence(item: Evidence, clean: Callable[[str], str]) -> Evidence:
    item.target = clean(item.target)
    item.vantage = clean(item.vantage)
    item.detail = clean(item.detail)
    if item.data:
        item.data = _clean_nested(item.data, clean)
    return item


def _clean_nested(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k) if isinstance(k, str) else k: _clean_nested(v, clean) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_nested(v, clean) for v in value]
    if isinstance(value, tuple):
        return tuple(_clean_nested(v, clean) for v in value)
    return value


def scrub_evidence(evidence: list[Evidence]) -> list[Evidence]:
    """Redact live evidence that is printed without a diagnosis (``acrcheck check``/``probe``)."""
    joined = _JOIN.join(
        part for item in evidence for part in (item.target, item.vantage, item.detail, *_nested_strings(item.data or {}))
    )
    found = redact_found(joined)
    if found.text == joined:
        return evidence

    def clean(text: str) -> str:
        return mask_values(redact_found(text).text, found.values) if text else text

    return [_clean_evidence(item, clean) for item in evidence]


__all__ = ["MASK", "scrub_diagnosis", "scrub_evidence", "secret_note"]
