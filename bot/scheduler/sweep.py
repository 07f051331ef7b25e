"""One sweep: every watch of one schedule for one fire time (slot).

Order of operations per watch, chosen so a crash at any point neither loses nor repeats a
post:

1. claim ``(watch, slot)`` (INSERT … ON CONFLICT DO NOTHING); losers stop here;
2. read configurations for all claimed registries at once (Resource Graph), then run the
   live checks with bounded concurrency;
3. diff against the stored baseline and, in one transaction, journal the Slack actions
   (the plan) and advance the baseline;
4. perform the actions, recording each Slack ts as soon as Slack returns it;
5. mark the claim done.

A new leader that adopts an unfinished claim resumes at step 4 if a plan exists, else
redoes steps 2–5 (nothing was posted yet).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.config import Settings
from bot.scheduler.drift import ERROR, MISSING, Observation, diff_observations
from bot.scheduler.leader import Leadership
from bot.scheduler.observe import (
    CheckFn,
    ConfigReader,
    error_observation,
    missing_observation,
    observation_from,
    read_configs,
)
from bot.scheduler.poster import Poster, SlackPostError
from bot.scheduler.render import render_change_reply, render_digest, render_status
from bot.scheduler.store import Claim, Store, WatchRow, WatchState

__all__ = ["Demoted", "SweepStats", "Sweeper"]

log = logging.getLogger(__name__)


class Demoted(RuntimeError):
    """Leadership was lost mid-sweep: stop before touching Slack again."""


@dataclass(slots=True)
class SweepStats:
    watches: int = 0
    claimed: int = 0
    resumed: int = 0
    checked: int = 0
    planned_actions: int = 0
    failures: int = 0
    config_reads: int = 0
    durations: list[float] = field(default_factory=list)


def _watch_key(watch_id: int) -> str:
    return f"watch:{watch_id}"


class Sweeper:
    """Runs sweeps for the leader. Stateless between sweeps: everything lives in the store."""

    def __init__(
        self,
        *,
        store: Store,
        leadership: Leadership,
        settings: Settings,
        poster: Poster,
        reader: ConfigReader,
        check: CheckFn,
        concurrency: int = 20,
        error_threshold: int = 3,
        check_timeout: float = 30.0,
    ) -> None:
        self.store = store
        self.leadership = leadership
        self.settings = settings
        self.poster = poster
        self.reader = reader
        self.check = check
        self.semaphore = asyncio.Semaphore(concurrency)
        self.error_threshold = error_threshold
        self.check_timeout = check_timeout
        self.epoch = 0
        self._busy: set[int] = set()  # watches with a run in flight in this process
        self._idle = asyncio.Condition()

    # --- helpers -----------------------------------------------------------------------

    def _assert_leader(self) -> None:
        if not self.leadership.is_leader:
            raise Demoted("lost scheduler leadership")

    async def _db(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # --- watch sweeps ------------------------------------------------------------------

    async def run(
        self,
        schedule_text: str,
        slot: datetime,
        *,
        allow_takeover: bool = False,
        only: list[WatchRow] | None = None,
    ) -> SweepStats:
        """Sweep the watches of ``schedule_text`` (or just ``only``) for ``slot``."""
        stats = SweepStats()
        self._assert_leader()
        rows: list[WatchRow] = (
            only if only is not None else await self._db(self.store.list_watches, schedule=schedule_text)
        )
        # One run per watch at a time: a catch-up, a new-watch run and a scheduled fire may
        # overlap at a slot boundary. Two concurrent runs would diff against the same baseline
        # (two first runs = two status messages), so a later slot waits for the earlier one.
        ids = {w.id for w in rows}
        async with self._idle:
            try:
                await asyncio.wait_for(self._idle.wait_for(lambda: not (ids & self._busy)), self.check_timeout * 2)
            except TimeoutError:
                ids -= self._busy  # still busy after a long wait: leave those to the next slot
            self._busy |= ids
        rows = [w for w in rows if w.id in ids]
        stats.watches = len(rows)
        try:
            return await self._run(rows, slot, allow_takeover, stats) if rows else stats
        finally:
            async with self._idle:
                self._busy -= ids
                self._idle.notify_all()

    async def _run(self, rows: list[WatchRow], slot: datetime, allow_takeover: bool, stats: SweepStats) -> SweepStats:
        slot_s = int(slot.timestamp())
        by_key = {_watch_key(w.id): w for w in rows}
        won: dict[str, Claim] = await self._db(
            self.store.claim_many,
            list(by_key),
            slot_s,
            owner=self.leadership.owner,
            epoch=self.epoch,
            fence=self.leadership.fence(),
            allow_takeover=allow_takeover,
        )
        stats.claimed = len(won)
        stats.resumed = sum(1 for c in won.values() if c.resumed)
        if not won:
            return stats
        states: dict[int, WatchState] = await self._db(self.store.get_states, [by_key[k].id for k in won])
        to_check = [(by_key[k], c) for k, c in won.items() if c.plan is None]
        to_resume = [(by_key[k], c) for k, c in won.items() if c.plan is not None]

        configs = None
        if to_check:
            names = sorted({w.registry for w, _ in to_check})
            stats.config_reads += 1
            configs = await read_configs(names, self.reader, self.settings)

        tasks = [self._resume(w, c, states.get(w.id), stats) for w, c in to_resume]
        tasks += [self._process(w, c, states.get(w.id), configs, slot, stats) for w, c in to_check]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Demoted):
                raise result
            if isinstance(result, BaseException):
                stats.failures += 1
                log.error("watch run failed", exc_info=result)
        return stats

    async def _observe(self, watch: WatchRow, configs: Any) -> tuple[Observation, bool]:
        """(observation, check_failed). Missing registries are not probed at all."""
        known = configs is not None and watch.registry in configs
        config = configs.get(watch.registry) if known else None
        if known and config is None:
            return missing_observation(), False
        async with self.semaphore:
            self._assert_leader()
            try:
                diagnosis = await asyncio.wait_for(
                    self.check(watch.registry, config, self.settings), timeout=self.check_timeout
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("check of %s failed: %s", watch.registry, exc)
                return error_observation(exc), True
        return observation_from(diagnosis, config), False

    async def _process(
        self,
        watch: WatchRow,
        claim: Claim,
        state: WatchState | None,
        configs: Any,
        slot: datetime,
        stats: SweepStats,
    ) -> None:
        obs, failed = await self._observe(watch, configs)
        stats.checked += 1
        state = state or WatchState(watch_id=watch.id)
        prev = state.observation
        streak = state.error_streak + 1 if failed else 0
        if failed and prev is not None and prev.status != ERROR and streak < self.error_threshold:
            obs = prev  # one flaky check is not news; say so only if it keeps failing
        elif obs.config is None and prev is not None and obs.status != MISSING:
            obs = Observation(obs.status, obs.title, obs.summary, obs.problems, prev.config)  # config unknown
        changes = diff_observations(prev, obs)
        now = datetime.now(UTC)
        since = now if prev is None or prev.status != obs.status or state.since is None else state.since
        text = render_status(
            watch.registry, obs, since=since, schedule=watch.schedule, vantage=self.settings.vantage_name
        )
        actions: list[dict[str, Any]] = []
        if state.status_ts is None or text != state.status_text:
            actions.append({"op": "status", "text": text})
        if changes:
            actions.append({"op": "reply", "text": render_change_reply(watch.registry, changes, obs)})
        plan = {"watch_id": watch.id, "channel": watch.channel, "actions": actions}
        new_state = WatchState(
            watch_id=watch.id,
            status_ts=state.status_ts,
            status_text=text,
            observation=obs,
            since=since,
            error_streak=streak,
            last_slot=claim.slot,
        )
        self._assert_leader()
        saved = await self._db(
            self.store.save_plan,
            claim,
            plan,
            owner=self.leadership.owner,
            fence=self.leadership.fence(),
            state=new_state,
            done=not actions,
        )
        if not saved:
            raise Demoted("claim lost before planning")
        stats.planned_actions += len(actions)
        if actions:
            await self._execute(claim, plan, new_state.status_ts)

    async def _resume(self, watch: WatchRow, claim: Claim, state: WatchState | None, stats: SweepStats) -> None:
        assert claim.plan is not None
        await self._execute(claim, claim.plan, state.status_ts if state else None)

    async def _execute(self, claim: Claim, plan: dict[str, Any], status_ts: str | None) -> None:
        """Perform the journaled actions in order, skipping those already done."""
        channel = str(plan["channel"])
        watch_id = plan.get("watch_id")
        meta = {"event_type": "acrcheck_watch", "event_payload": {"job": claim.job_key, "slot": claim.slot}}
        for action in plan["actions"]:
            if action.get("done"):
                if action["op"] == "status" and action.get("ts"):
                    status_ts = action["ts"]
                continue
            self._assert_leader()
            new_status_ts: tuple[int, str] | None = None
            try:
                if action["op"] == "status":
                    updated = bool(status_ts) and await self.poster.update(channel, str(status_ts), action["text"])
                    if not updated:
                        status_ts = await self.poster.post(channel, action["text"], metadata=meta)
                        assert watch_id is not None
                        new_status_ts = (int(watch_id), status_ts)
                    action["ts"] = status_ts
                elif action["op"] == "reply":
                    action["ts"] = await self.poster.post(channel, action["text"], thread_ts=status_ts, metadata=meta)
                else:  # "digest": a top-level message of its own
                    action["ts"] = await self.poster.post(channel, action["text"], metadata=meta)
            except SlackPostError as exc:
                if not exc.permanent:
                    raise
                log.error("Slack refused %s in %s: %s (dropped)", action["op"], channel, exc.error)
                action["error"] = exc.error
            action["done"] = True
            await self._db(
                self.store.record_progress, claim, plan, owner=self.leadership.owner, status_ts=new_status_ts
            )
        await self._db(self.store.finish, claim, owner=self.leadership.owner)

    # --- digest ------------------------------------------------------------------------

    async def digest(self, slot: datetime, *, allow_takeover: bool = False) -> int:
        """One summary message per channel with watches; returns how many were posted."""
        self._assert_leader()
        rows: list[WatchRow] = await self._db(self.store.list_watches)
        by_channel: dict[str, list[WatchRow]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        slot_s = int(slot.timestamp())
        won: dict[str, Claim] = await self._db(
            self.store.claim_many,
            [f"digest:{ch}" for ch in by_channel],
            slot_s,
            owner=self.leadership.owner,
            epoch=self.epoch,
            fence=self.leadership.fence(),
            allow_takeover=allow_takeover,
        )
        if not won:
            return 0
        states: dict[int, WatchState] = await self._db(self.store.get_states, [r.id for r in rows])
        posted = 0
        for key, claim in won.items():
            channel = key.split(":", 1)[1]
            plan = claim.plan
            if plan is None:
                items = [
                    (r.registry, states[r.id].observation if r.id in states else None) for r in by_channel[channel]
                ]
                plan = {
                    "watch_id": None,
                    "channel": channel,
                    "actions": [{"op": "digest", "text": render_digest(items)}],
                }
                saved = await self._db(
                    self.store.save_plan,
                    claim,
                    plan,
                    owner=self.leadership.owner,
                    fence=self.leadership.fence(),
                    state=None,
                )
                if not saved:
                    raise Demoted("claim lost before planning")
            await self._execute(claim, plan, None)
            posted += 1
        return posted
