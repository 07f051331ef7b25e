"""Which of a fixed set of words occur in a text, in one pass (Aho-Corasick, pyahocorasick's C automaton).

The signal vocabulary and the redactor's gates are both such sets: every occurrence of every
word is found, overlapping ones included, in time linear in the text plus the matches. A
300-character paste costs a few microseconds, where a regex trie tried at every position cost
tens. The automaton is built on first use (about a millisecond for a thousand words), so a
start-up that never scans pays nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class KeywordScanner:
    """The words of a fixed vocabulary that occur in a text."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self.keywords: tuple[str, ...] = tuple(sorted({word for word in keywords if word}))
        self._automaton: Any = None

    def automaton(self) -> Any:
        """The compiled automaton (built once, on first use)."""
        if self._automaton is None:
            import ahocorasick  # C extension: imported with the first scan, not at import time

            automaton = ahocorasick.Automaton()
            for keyword in self.keywords:
                automaton.add_word(keyword, keyword)
            automaton.make_automaton()
            self._automaton = automaton
        return self._automaton

    def scan(self, text: str) -> set[str]:
        """Every keyword that occurs in ``text`` (an empty vocabulary finds nothing)."""
        if not self.keywords:
            return set()
        return {keyword for _, keyword in self.automaton().iter(text)}
