"""The engine's public entry points: text in, Diagnosis out.

Slack handlers, the CLI and the scheduler call only these functions, so the engine
stays ignorant of where the text came from or where the answer goes.
"""

from __future__ import annotations

from bot.classify import classify
from bot.extract import extract
from bot.models import Diagnosis


def diagnose(text: str, *, lang: str = "en") -> Diagnosis:
    """Offline diagnosis of a pasted error: normalise, redact, extract facts, classify."""
    extraction = extract(text)
    return classify(extraction, lang=lang)
