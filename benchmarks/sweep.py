"""Benchmark: one scheduled sweep of 1,000 watched registries against local fakes.

Real code paths: ``bot.checks.azure.read_registries_bulk`` (Azure SDK Resource Graph client
over HTTPS with a trustme CA) for configurations, the scheduler's Sweeper, claims in a
real database, and slack_sdk's AsyncWebClient against a fake Slack. Fakes add latency:
Resource Graph 200–400 ms per call, Slack 50 ms per call, each probe 20–80 ms.

Three sweeps are measured: the first (every watch posts its status message), a quiet one
(nothing changed: nothing should be posted), and one where 5 % of registries drifted.

    .venv/bin/python benchmarks/sweep.py [--registries 1000] [--channels 50] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import ssl
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import trustme
from pydantic import SecretStr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "scheduler"))

from fake_registry import diagnosis  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.scheduler.leader import FileLockLeader  # noqa: E402
from bot.scheduler.observe import default_reader  # noqa: E402
from bot.scheduler.poster import Poster, make_slack_client  # noqa: E402
from bot.scheduler.store import Store  # noqa: E402
from bot.scheduler.sweep import Sweeper  # noqa: E402

SCHEDULE = "hourly"


class FakeResourceGraph:
    """HTTPS POST /providers/Microsoft.ResourceGraph/resources, answering ``name in~ (...)`` queries."""

    def __init__(self, registries: dict[str, dict[str, Any]], latency: tuple[float, float]) -> None:
        self.registries = registries
        self.latency = latency
        self.calls = 0
        self.ca = trustme.CA()
        self._dir = tempfile.TemporaryDirectory(prefix="acrcheck-bench-")
        self.ca_path = Path(self._dir.name) / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> FakeResourceGraph:
        fake = self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.calls += 1
                time.sleep(random.uniform(*fake.latency))
                names = re.findall(r"'([^']*)'", body.get("query", "").split("in~ (", 1)[-1].split(")", 1)[0])
                rows = [fake.registries[n] for n in names if n in fake.registries]
                data = json.dumps(
                    {"totalRecords": len(rows), "count": len(rows), "data": rows, "facets": [],
                     "resultTruncated": "false"}
                ).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
        self._dir.cleanup()


def registry_row(name: str, ip_rules: list[str]) -> dict[str, Any]:
    rid = f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/{name}"
    return {
        "id": rid,
        "name": name,
        "resourceGroup": "rg",
        "subscriptionId": "00000000-0000-0000-0000-000000000000",
        "location": "westeurope",
        "sku": {"name": "Premium", "tier": "Premium"},
        "properties": {
            "loginServer": f"{name}.azurecr.io",
            "publicNetworkAccess": "Enabled",
            "networkRuleSet": {
                "defaultAction": "Deny",
                "ipRules": [{"action": "Allow", "value": v} for v in ip_rules],
            },
            "networkRuleBypassOptions": "AzureServices",
            "dataEndpointEnabled": True,
            "dataEndpointHostNames": [f"{name}.westeurope.data.azurecr.io"],
            "privateEndpointConnections": [],
            "provisioningState": "Succeeded",
        },
        "replicaRegions": ["westeurope"],
    }


class Leader(FileLockLeader):
    def __init__(self) -> None:
        super().__init__(None, owner="bench", poll=1.0)
        self.is_leader = True


async def probe(registry: str, config: Any, settings: Settings) -> Any:
    await asyncio.sleep(random.uniform(0.02, 0.08))
    return diagnosis("healthy")


async def run(args: argparse.Namespace) -> None:
    names = [f"benchreg{i:05d}" for i in range(args.registries)]
    rows = {n: registry_row(n, ["203.0.113.0/24"]) for n in names}
    graph = FakeResourceGraph(rows, (0.2, 0.4)).start()
    slack = FakeSlack(latency=0.05).start()
    tmp = tempfile.TemporaryDirectory(prefix="acrcheck-bench-db-")
    db_url = f"sqlite:///{tmp.name}/bench.db"
    pg_db = None
    if args.pg:  # a throw-away database on that server, dropped at the end
        pg_db = f"acrcheck_bench_{int(time.time())}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_db}"')
        db_url = args.pg.rsplit("/", 1)[0] + f"/{pg_db}"
    settings = Settings(
        database_url=db_url,
        slack_api_url=slack.api_url,
        slack_bot_token=SecretStr("xoxb-bench"),
        arm_endpoint=graph.url,
        ca_bundle=graph.ca_path,
        azure_credential="token",
        azure_token=SecretStr("fake-token"),
        subscriptions=["00000000-0000-0000-0000-000000000000"],
    )
    store = Store(db_url)
    store.create_all()
    for i, name in enumerate(names):
        store.upsert_watch(name, f"CBENCH{i % args.channels:04d}", SCHEDULE, source="config")
    sweeper = Sweeper(
        store=store,
        leadership=Leader(),
        settings=settings,
        poster=Poster(make_slack_client(settings), min_interval=1.0),
        reader=default_reader,
        check=probe,
        concurrency=args.concurrency,
        check_timeout=30,
    )
    sweeper.epoch = 1
    slot = datetime(2026, 1, 1, tzinfo=UTC)
    print(
        f"{args.registries} registries in {args.channels} channels; Resource Graph 200–400 ms/call, "
        f"Slack 50 ms/call + 1 msg/s/channel pacing, probes 20–80 ms, concurrency {args.concurrency}, "
        f"db {'postgresql' if args.pg else 'sqlite'}"
    )
    print(f"{'sweep':<34}{'wall s':>8}{'ARM calls':>11}{'Slack calls':>13}{'posts':>7}{'updates':>9}")
    for label, mutate in (
        ("1 first run (status messages)", None),
        ("2 nothing changed", None),
        ("3 drift on 5% (IP rule added)", 0.05),
    ):
        if mutate:
            for name in names[: int(len(names) * mutate)]:
                rows[name] = registry_row(name, ["203.0.113.0/24", "198.51.100.7"])
        arm_before, slack_before = graph.calls, len(slack.calls)
        posts_before, updates_before = len(slack.posts()), len(slack.updates())
        started = time.perf_counter()
        stats = await sweeper.run(SCHEDULE, slot)
        wall = time.perf_counter() - started
        print(
            f"{label:<34}{wall:>8.1f}{graph.calls - arm_before:>11}{len(slack.calls) - slack_before:>13}"
            f"{len(slack.posts()) - posts_before:>7}{len(slack.updates()) - updates_before:>9}"
            + ("" if stats.failures == 0 else f"  ({stats.failures} failures)")
        )
        slot += timedelta(hours=1)
    store.dispose()
    if pg_db:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
    slack.stop()
    graph.stop()
    tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registries", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--pg",
        default=None,
        help="PostgreSQL server URL: a temporary database is created there (instead of SQLite)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
