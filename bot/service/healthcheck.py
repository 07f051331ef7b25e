"""``python -m bot.service.healthcheck``: the container HEALTHCHECK (the slim image has no curl).

Exits 0 when ``/healthz`` on ``ACRCHECK_PORT`` (default 3000) answers 200 within 3 seconds,
1 otherwise. Liveness only, like the Kubernetes probe: readiness is for traffic, not restarts.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("ACRCHECK_PORT", "3000")
    url = f"http://127.0.0.1:{port}/healthz"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
