"""Test-only fault injection: die by SIGKILL at a named point of the post protocol.

The crash tests need a replica to die at an exact instant (after the plan was saved, just
before a post leaves, right after Slack answered, right after the answer was recorded), not
"somewhere around" a sleep. Two environment variables arm it; unset (production) every
:func:`crashpoint` call is a dictionary lookup and nothing else:

* ``ACRCHECK_TEST_CRASH_AT=<point>[@<n>]``: the ``n``-th time (default 1) this process reaches
  ``point``, it kills itself with SIGKILL — no cleanup, no finally blocks, exactly as if the
  node vanished;
* ``ACRCHECK_TEST_CRASH_FLAG=<path>``: created (O_EXCL) just before dying, so among replicas
  sharing the variables only the first one to get there dies; the next leader passes through.

Points: ``after_plan``, ``before_post``, ``after_post``, ``after_record`` (see ``sweep.py``).
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter

__all__ = ["POINTS", "crashpoint"]

log = logging.getLogger(__name__)

POINTS = ("after_plan", "before_post", "after_post", "after_record")
_ENV_AT = "ACRCHECK_TEST_CRASH_AT"
_ENV_FLAG = "ACRCHECK_TEST_CRASH_FLAG"
_reached: Counter[str] = Counter()


def crashpoint(name: str) -> None:
    """SIGKILL this process here if the test environment asks for it (see the module docstring)."""
    spec = os.environ.get(_ENV_AT)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] != (int(nth) if nth.isdigit() else 1):
        return
    flag = os.environ.get(_ENV_FLAG)
    if flag:
        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another replica already died here
    log.warning("crash point %s reached (%s): SIGKILL", name, spec)
    os.kill(os.getpid(), signal.SIGKILL)
