"""The scheduler service: leadership + APScheduler 3 + sweeps, started by ``acrcheck serve``.

Every replica calls :func:`start_scheduler`. All of them sync the settings file's watches
into the database and compete for leadership; only the leader starts an APScheduler 3
``AsyncIOScheduler``. Its job store is in memory on purpose: APScheduler 3 cannot share a
job store between processes, and the watches themselves live in our own tables, so the
jobs are rebuilt from the database on every election and re-synced every
``sync_interval`` seconds (that is how a watch added on another replica gets scheduled).
There is one APScheduler job per distinct schedule, not per watch, so 1,000 hourly watches
make one sweep with one bulk configuration read.

Stopping (SIGTERM) is two steps so a rolling update never cuts a post in half:
:meth:`SchedulerHandle.begin_drain` stops taking new work (APScheduler paused, no new sweep,
sync, retry or catch-up; a follower stops competing for the lock) while the sweeps in flight
keep the leadership they need to post and record; once they finished (or the grace ran out
and they were cancelled), :meth:`SchedulerHandle.stop` releases leadership.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.scheduler.leader import Leadership, leadership_for, make_owner_id
from bot.scheduler.observe import CheckFn, ConfigReader, default_check, default_reader
from bot.scheduler.poster import Poster
from bot.scheduler.schedule_spec import ScheduleError, ScheduleSpec, parse_schedule
from bot.scheduler.store import Store, store_for_url
from bot.scheduler.sweep import Demoted, Sweeper

__all__ = ["SchedulerHandle", "SchedulerOptions", "start_scheduler"]

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class SchedulerOptions:
    """Tuning knobs. ``from_settings`` reads optional ``watch_*`` settings if the lead adds them."""

    leader_poll: float = 1.0  # advisory-lock poll / heartbeat, seconds
    takeover_grace: float | None = None  # wait before adopting a dead leader's runs (default 2.5 polls)
    sync_interval: float = 15.0  # re-read watches from the database
    concurrency: int = 20  # live checks in flight
    slack_min_interval: float = 1.0  # per-channel pacing
    misfire_grace: float = 300.0  # a slot missed by less than this still runs after a restart/takeover
    error_threshold: int = 3  # consecutive failed checks before "the check could not run" is posted
    check_timeout: float | None = None  # default: settings.check_deadline + 10
    digest: str | None = None  # e.g. "daily 09:00 Europe/Paris"
    retry_attempts: int = 10  # a plan whose Slack actions keep failing is given up after this many attempts…
    retry_window: float = 3600.0  # …spanning at least this many seconds (then its claim is marked failed)
    retry_backoff: float = 15.0  # first wait before retrying between slots, doubled per attempt (max 10 min)
    demote_timeout: float = 5.0  # on losing leadership, wait at most this long for running sweeps to stop

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulerOptions:
        opts = cls()
        for name in cls.__dataclass_fields__:
            value = getattr(settings, f"watch_{name}", None)
            if value is not None:
                setattr(opts, name, value)
        return opts


def _trigger(spec: ScheduleSpec) -> BaseTrigger:
    """Epoch-aligned interval (same fire times on every replica) or a daily cron in the zone."""
    if spec.kind == "daily":
        assert spec.at is not None
        return CronTrigger(hour=spec.at.hour, minute=spec.at.minute, timezone=spec.tz)
    return IntervalTrigger(seconds=spec.interval_seconds, start_date=_EPOCH, timezone=UTC)


class SchedulerService:
    """Reacts to leadership changes; owns the APScheduler instance while leading."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        leadership: Leadership,
        sweeper: Sweeper,
        options: SchedulerOptions,
    ) -> None:
        self.settings = settings
        self.store = store
        self.leadership = leadership
        self.sweeper = sweeper
        self.options = options
        self.scheduler: AsyncIOScheduler | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retrying: asyncio.Task[None] | None = None
        self._draining = asyncio.Event()
        self.sweeps = 0

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def begin_drain(self) -> None:
        """Take no new work; running sweeps go on (see the module docstring)."""
        if self._draining.is_set():
            return
        self._draining.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()  # not shutdown(): that cancels the running jobs' tasks
        if not self.leadership.is_leader:
            self.leadership.stop()  # a follower has nothing in flight: stop competing now

    def work(self) -> set[asyncio.Task[Any]]:
        """Scheduler tasks in flight (sweeps, retries, catch-up) that a drain waits for."""
        return {t for t in self._tasks if not t.done()}

    # --- leadership callbacks ----------------------------------------------------------

    async def on_elected(self) -> None:
        if self.draining:
            return  # elected while stopping: take nothing on; stop() releases the lock
        self.sweeper.epoch = await asyncio.to_thread(self.store.bump_epoch, self.leadership.owner)
        log.info("%s leads the scheduler (term %d)", self.leadership.owner, self.sweeper.epoch)
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self.options.misfire_grace),
            },
        )
        self.scheduler.start()
        self.scheduler.add_job(
            self._sync, IntervalTrigger(seconds=self.options.sync_interval), id="sync", replace_existing=True
        )
        self.scheduler.add_job(self._prune, IntervalTrigger(hours=6), id="prune", replace_existing=True)
        if self.options.digest:
            spec = parse_schedule(self.options.digest)
            self.scheduler.add_job(self._digest, _trigger(spec), args=[spec.text], id="digest", replace_existing=True)
        self._spawn(self._catch_up())

    async def on_demoted(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            # Bounded: a task stuck in a database call on a dead link (``to_thread`` cannot be
            # interrupted) must not keep the leadership loop from stepping down and re-competing.
            # Leadership is already off (``is_leader`` is False), so such a task posts nothing more.
            _, stuck = await asyncio.wait(set(self._tasks), timeout=self.options.demote_timeout)
            if stuck:
                log.warning("%d scheduler task(s) still stopping after demotion; not waiting", len(stuck))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- jobs --------------------------------------------------------------------------

    async def _catch_up(self) -> None:
        """After election: adopt a dead leader's unfinished runs and run slots nobody ran."""
        grace = self.options.takeover_grace
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace if grace is not None else 2.5 * self.options.leader_poll):
                await self._draining.wait()
        if self.draining:
            return
        await self._sync(first=True)
        now = datetime.now(UTC)
        for text in sorted(await asyncio.to_thread(self.store.schedules)):
            spec = self._spec(text)
            if spec is None or self.draining:
                continue
            slot = spec.slot_at(now)
            if (now - slot).total_seconds() <= self.options.misfire_grace:
                await self._sweep(text, slot, allow_takeover=True)

    async def _sync(self, first: bool = False) -> None:
        """Make the APScheduler jobs match the schedules in the database; start new watches."""
        scheduler = self.scheduler
        if scheduler is None or self.draining:
            return
        wanted = {f"sweep:{t}": t for t in await asyncio.to_thread(self.store.schedules)}
        current = {job.id for job in scheduler.get_jobs() if job.id.startswith("sweep:")}
        for job_id in current - wanted.keys():
            scheduler.remove_job(job_id)
        for job_id in wanted.keys() - current:
            spec = self._spec(wanted[job_id])
            if spec is not None:
                scheduler.add_job(self._fire, _trigger(spec), args=[spec.text], id=job_id, replace_existing=True)
        if not first:
            await self._start_new_watches()
            if self._retrying is None or self._retrying.done():
                # its own task: a slow Slack must not make APScheduler skip the next syncs
                self._retrying = self._spawn(self._retry_pending())

    async def _retry_pending(self) -> None:
        """Deliver plans whose Slack actions failed without waiting for the watch's next slot."""
        try:
            await self.sweeper.retry_pending()
        except Demoted:
            return
        except Exception:
            log.exception("retrying undelivered Slack actions failed")

    async def _start_new_watches(self) -> None:
        """A watch added a minute ago should not wait for its next slot to show a status."""
        fresh = await asyncio.to_thread(self.store.watches_without_state)
        groups: dict[str, list[Any]] = {}
        for row in fresh:
            groups.setdefault(row.schedule, []).append(row)
        now = datetime.now(UTC)
        for text, rows in groups.items():
            spec = self._spec(text)
            if spec is not None:
                await self._sweep(text, spec.slot_at(now), only=rows)

    async def _fire(self, schedule_text: str) -> None:
        spec = self._spec(schedule_text)
        if spec is not None and not self.draining:
            await self._sweep(schedule_text, spec.slot_at(datetime.now(UTC)))

    async def _sweep(self, text: str, slot: datetime, **kwargs: Any) -> None:
        started = asyncio.get_running_loop().time()
        current = asyncio.current_task()
        if current is not None:
            self._tasks.add(current)  # so demotion cancels a sweep APScheduler started
        try:
            stats = await self.sweeper.run(text, slot, **kwargs)
        except Demoted:
            log.warning("sweep %s@%s stopped: leadership lost", text, slot.isoformat())
            return
        finally:
            if current is not None:
                self._tasks.discard(current)
        self.sweeps += 1
        if stats.claimed:
            log.info(
                "sweep %s@%s: %d watches, %d claimed (%d resumed), %d actions, %d failures in %.1fs",
                text, slot.isoformat(), stats.watches, stats.claimed, stats.resumed, stats.planned_actions,
                stats.failures, asyncio.get_running_loop().time() - started,
            )  # fmt: skip

    async def _digest(self, schedule_text: str) -> None:
        spec = self._spec(schedule_text)
        if spec is None or self.draining:
            return
        current = asyncio.current_task()
        if current is not None:
            self._tasks.add(current)  # a digest in flight is drained (and cancelled on demotion) too
        try:
            with contextlib.suppress(Demoted):
                await self.sweeper.digest(spec.slot_at(datetime.now(UTC)))
        finally:
            if current is not None:
                self._tasks.discard(current)

    async def _prune(self) -> None:
        await asyncio.to_thread(self.store.prune_claims)

    @staticmethod
    def _spec(text: str) -> ScheduleSpec | None:
        try:
            return parse_schedule(text)
        except ScheduleError:
            log.error("ignoring watches with unparseable schedule %r", text)
            return None


@dataclass(slots=True)
class SchedulerHandle:
    """What ``acrcheck serve`` keeps: stop it on shutdown."""

    service: SchedulerService
    task: asyncio.Task[None]

    @property
    def is_leader(self) -> bool:
        return self.service.leadership.is_leader

    def begin_drain(self) -> None:
        """First step of a stop: no new sweeps; the ones in flight keep leadership and go on."""
        self.service.begin_drain()

    def work(self) -> set[asyncio.Task[Any]]:
        """The scheduler's tasks in flight (what a drain waits for)."""
        return self.service.work()

    async def drain(self, grace: float, force: asyncio.Event | None = None) -> tuple[int, int]:
        """``begin_drain``, then wait up to ``grace`` s (or until ``force`` is set) for the work in
        flight; cancel what is left. Returns (finished, cancelled).

        Leadership is still held throughout, so the sweeps can post and record: call
        :meth:`stop` next to release it.
        """
        self.begin_drain()
        pending = self.work()
        if not pending:
            return 0, 0
        log.info("scheduler: waiting up to %.0fs for %d task(s) in flight", grace, len(pending))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        forced = asyncio.ensure_future(force.wait()) if force is not None else None
        left = set(pending)
        try:
            while left and not (force is not None and force.is_set()):
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                waiting = left | ({forced} if forced is not None else set())
                _, rest = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                left = {t for t in rest if t is not forced}
        finally:
            if forced is not None:
                forced.cancel()
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=2)
        return len(pending) - len(left), len(left)

    async def stop(self) -> None:
        """Release leadership (the lock goes with the connection) and stop the scheduler.

        Anything still running is cancelled by the demotion; drain first to let it finish.
        """
        self.service.begin_drain()
        self.service.leadership.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=10)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.service.on_demoted()


def config_watch_specs(settings: Settings) -> list[tuple[str, str, str]]:
    """Settings-file watches, validated like the Slack command's (SSRF guard, schedule grammar)."""
    from bot.engine.hostguard import UnsafeTarget, registry_target

    out: list[tuple[str, str, str]] = []
    for spec in settings.watches:
        try:
            name = registry_target(spec.registry).name
            schedule = parse_schedule(spec.schedule).text
        except (UnsafeTarget, ScheduleError) as exc:
            log.error("settings watch %s in %s skipped: %s", spec.registry, spec.channel, exc)
            continue
        out.append((name, spec.channel, schedule))
    return out


async def start_scheduler(
    settings: Settings,
    slack_client: AsyncWebClient,
    *,
    options: SchedulerOptions | None = None,
    check: CheckFn | None = None,
    reader: ConfigReader | None = None,
    store: Store | None = None,
) -> SchedulerHandle:
    """Sync settings watches, then compete for leadership in the background.

    ``check``/``reader`` default to the engine's live check and the Resource Graph bulk
    read; they are parameters so tests and the benchmark can run the real scheduler
    against fakes.
    """
    opts = options or SchedulerOptions.from_settings(settings)
    if store is None:
        store = await asyncio.to_thread(store_for_url, settings.database_url)
    await asyncio.to_thread(store.sync_config_watches, config_watch_specs(settings))
    leadership = leadership_for(settings.database_url, owner=make_owner_id(), poll=opts.leader_poll)
    poster = Poster(slack_client, min_interval=opts.slack_min_interval)
    sweeper = Sweeper(
        store=store,
        leadership=leadership,
        settings=settings,
        poster=poster,
        reader=reader or default_reader,
        check=check or default_check,
        concurrency=opts.concurrency,
        error_threshold=opts.error_threshold,
        check_timeout=opts.check_timeout or settings.check_deadline + 10,
        max_attempts=opts.retry_attempts,
        retry_window=opts.retry_window,
        retry_backoff=opts.retry_backoff,
    )
    service = SchedulerService(settings=settings, store=store, leadership=leadership, sweeper=sweeper, options=opts)
    task = asyncio.create_task(leadership.run(service.on_elected, service.on_demoted), name="acrcheck-leadership")
    return SchedulerHandle(service=service, task=task)
