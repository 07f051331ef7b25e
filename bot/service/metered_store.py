"""The bot's store, counting each diagnosis it saves (by cause) and the live checks behind it.

Every diagnosis a Slack handler shows is saved first (buttons need it), so ``save_diagnosis``
is the one place that sees all of them, with their cause and evidence, whichever handler
made them.
"""

from __future__ import annotations

from typing import Any

from bot import metrics
from bot.store import Store


class MeteredStore(Store):
    """``Store`` plus the diagnosis and check metrics."""

    def save_diagnosis(self, **kwargs: Any) -> str:
        diag_id = super().save_diagnosis(**kwargs)
        metrics.record_diagnosis(str(kwargs.get("cause", "")), str(kwargs.get("kind", "")), kwargs.get("evidence") or ())
        return diag_id
