"""Stand-alone scheduler process: ``python -m bot.scheduler.runner``.

Useful as a dedicated "scheduler" deployment next to listener replicas, and how the
multi-process tests start real competing schedulers. Settings come from the environment
/ YAML as for the bot; ``--check`` and ``--reader`` take ``module:function`` or
``/path/file.py:function`` to swap the registry side (demo mode, tests, benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from bot.config import load_settings
from bot.scheduler.poster import make_slack_client
from bot.scheduler.service import SchedulerOptions, start_scheduler

__all__ = ["load_callable", "main"]

log = logging.getLogger("acrcheck.scheduler.runner")


def load_callable(ref: str) -> Any:
    """Resolve ``package.module:name`` or ``/path/to/file.py:name``."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise SystemExit(f"expected module:function, got {ref!r}")
    if target.endswith(".py"):
        path = Path(target).resolve()
        spec = importlib.util.spec_from_file_location(f"_acrcheck_ext_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, attr)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bot.scheduler.runner", description=__doc__)
    p.add_argument("--check", help="module:function replacing the live check")
    p.add_argument("--reader", help="module:function replacing the Resource Graph bulk read")
    p.add_argument("--poll", type=float, default=None, help="leader lock poll/heartbeat seconds")
    p.add_argument("--grace", type=float, default=None, help="takeover grace seconds")
    p.add_argument("--sync", type=float, default=None, help="watch re-sync interval seconds")
    p.add_argument("--slack-interval", type=float, default=None, help="seconds between posts per channel")
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--digest", default=None, help='e.g. "daily 09:00 UTC"')
    return p.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    settings = load_settings()
    opts = SchedulerOptions.from_settings(settings)
    for attr, value in (
        ("leader_poll", args.poll),
        ("takeover_grace", args.grace),
        ("sync_interval", args.sync),
        ("slack_min_interval", args.slack_interval),
        ("concurrency", args.concurrency),
        ("digest", args.digest),
    ):
        if value is not None:
            setattr(opts, attr, value)
    handle = await start_scheduler(
        settings,
        make_slack_client(settings),
        options=opts,
        check=load_callable(args.check) if args.check else None,
        reader=load_callable(args.reader) if args.reader else None,
    )
    signals = 0
    stop, force = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        (force if signals > 1 else stop).set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()
    log.info("stop signal received: draining (up to %.0fs)", settings.shutdown_grace)
    # Same order as ``acrcheck serve``: finish the posts in flight, then release leadership.
    finished, cancelled = await handle.drain(settings.shutdown_grace, force)
    await handle.stop()
    log.info("stopped (%d in-flight task(s) finished, %d cancelled)", finished, cancelled)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    asyncio.run(_run(_parse(argv)))


if __name__ == "__main__":
    main()
