"""How long ``acrcheck serve`` takes to report ready: start to the first ``/readyz`` 200.

A real ``acrcheck serve`` process in HTTP mode, pointed at the fake Slack Web API of
``tests/fakes/slack.py`` (which answers ``auth.test``) and a temporary SQLite database, is
started N times; ``/readyz`` is polled every 10 ms from the moment the process is spawned.
Ready means: settings validated, knowledge base loaded, database migrated, Slack reached.

    python benchmarks/serve_ready.py [--starts 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.slack import BOT_TOKEN, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def serve_env(fake: FakeSlack, database: str, **settings: str) -> dict[str, str]:
    """The environment of a real ``acrcheck serve`` talking only to ``fake``: this process's
    environment without Slack, acrcheck or proxy settings, then the fake's and ``settings``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACRCHECK_")) and "PROXY" not in k.upper()
    }
    env.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "ACRCHECK_SLACK_API_URL": fake.api_url,
            "ACRCHECK_DATABASE_URL": database,
            "ACRCHECK_AZURE_CREDENTIAL": "none",
            "PYTHONPATH": str(ROOT),
            **settings,
        }
    )
    return env


def time_to_ready(fake: FakeSlack, database: str, timeout: float = 30.0) -> float:
    port = _free_port()
    env = serve_env(fake, database)
    command = [sys.executable, "-m", "bot.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--log-level", "WARNING"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"acrcheck serve exited: {proc.stderr.read().decode()[-400:] if proc.stderr else ''}"
                )
            if _status(f"http://127.0.0.1:{port}/readyz") == 200:
                return time.perf_counter() - start
            time.sleep(0.01)
        raise RuntimeError("acrcheck serve was not ready in time")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def measure(starts: int = 5) -> dict[str, float]:
    fake = FakeSlack().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            times = [time_to_ready(fake, f"sqlite:///{tmp}/ready-{n}.db") for n in range(starts)]
    finally:
        fake.stop()
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "starts": starts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    result = measure(args.starts)
    print(
        f"acrcheck serve (HTTP mode, fake Slack, SQLite) ready: median {result['median']:.2f} s after start over "
        f"{args.starts} starts (min {result['min']:.2f}, max {result['max']:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
