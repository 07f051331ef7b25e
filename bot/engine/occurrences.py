"""Bounded substring search, shared by the readers that look for a phrase and then read after it.

A huge paste can repeat a phrase thousands of times; each reader looks only at its first few
occurrences, so its work stays bounded whatever the paste (the adversarial benchmark's shapes).
"""

from __future__ import annotations

from collections.abc import Iterator


def occurrences(text: str, needle: str, limit: int) -> Iterator[int]:
    """Where ``needle`` starts in ``text``, its first ``limit`` non-overlapping times only."""
    start = 0
    for _ in range(limit):
        index = text.find(needle, start)
        if index < 0:
            return
        yield index
        start = index + len(needle)
