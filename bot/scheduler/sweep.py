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

Step 4 is where a crash could repeat a post: Slack may apply a message whose answer never
reaches us (the replica died, the connection broke, the read timed out). So each post is
journaled as attempted (``sent_at``) before its request leaves, and a post found attempted
is first looked for in the channel by the ``acrcheck_watch`` metadata it carries
(``{job, slot, op}``), within a bounded time window and number of pages; if it is there, its
ts is recorded (``found``) instead of posting again (:meth:`Sweeper._post_once`). Status edits
(``chat.update``) are idempotent and simply redone.

Step 4 can also fail without anyone dying (Slack unreachable or answering 5xx for a while).
The baseline has already advanced, so the saved plan is then the only record of the alert:
before a watch's next slot is decided, the leader finishes that watch's ``planned`` claims of
earlier slots, oldest first (``_finish_backlog``); if one still fails, the watch sits the
slot out rather than post out of order. The service also retries such plans between slots
with exponential backoff (``retry_pending``), so an hourly or daily watch does not wait for
its next slot. A plan that keeps failing is given up after ``max_attempts`` attempts spanning
at least ``retry_window`` seconds: its claim is marked ``failed`` (logged), and if its status
edit never landed the stored status text is forgotten so the next run re-edits the message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.config import Settings
from bot.scheduler.crashpoints import crashpoint
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
    backlog: int = 0  # earlier slots' plans finished (or given up) before this slot
    held: int = 0  # watches that sat this slot out: an earlier plan is still undelivered
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
        max_attempts: int = 10,
        retry_window: float = 3600.0,
        retry_backoff: float = 15.0,
        retry_backoff_max: float = 600.0,
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
        self.max_attempts = max_attempts  # a failing plan is given up after this many attempts…
        self.retry_window = retry_window  # …spanning at least this many seconds
        self.retry_backoff = retry_backoff  # first wait before a between-slots retry, doubled each time
        self.retry_backoff_max = retry_backoff_max
        self.epoch = 0
        self._busy: set[int] = set()  # watches with a run in flight in this process
        self._idle = asyncio.Condition()
        self._digest_lock = asyncio.Lock()  # digest runs and digest retries never overlap

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
        # Earlier slots first: a plan whose Slack actions failed holds news this slot's diff
        # (against the already-advanced baseline) cannot see.
        held = await self._finish_backlog([_watch_key(w.id) for w in rows], before_slot=slot_s, stats=stats)
        if held:
            stats.held = len(held)
            log.warning(
                "%d watch(es) sit out slot %d: Slack actions of an earlier slot are still undelivered",
                len(held), slot_s,
            )  # fmt: skip
            rows = [w for w in rows if _watch_key(w.id) not in held]
            if not rows:
                return stats
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
        if actions:
            crashpoint("after_plan")
        stats.planned_actions += len(actions)
        if actions:
            await self._execute(claim, plan, new_state.status_ts)

    async def _resume(self, watch: WatchRow, claim: Claim, state: WatchState | None, stats: SweepStats) -> None:
        assert claim.plan is not None
        await self._execute(claim, claim.plan, state.status_ts if state else None)

    # --- unfinished plans ----------------------------------------------------------------

    async def _finish_backlog(
        self,
        job_keys: list[str],
        *,
        before_slot: int | None = None,
        respect_backoff: bool = False,
        stats: SweepStats | None = None,
    ) -> set[str]:
        """Run the saved plans of unfinished earlier claims of ``job_keys``, oldest slot first.

        The caller holds these jobs (``_busy`` / ``_digest_lock``), so nothing else in this
        process runs them, and only the lock holder passes the fence. Returns the jobs still
        held up by a plan that failed again (or whose backoff has not expired).
        """
        if not job_keys:
            return set()
        self._assert_leader()
        pending: list[Claim] = await self._db(
            self.store.adopt_unfinished,
            owner=self.leadership.owner,
            epoch=self.epoch,
            fence=self.leadership.fence(),
            job_keys=job_keys,
            before_slot=before_slot,
        )
        if not pending:
            return set()
        queues: dict[str, list[Claim]] = {}
        for claim in pending:  # already ordered by slot
            queues.setdefault(claim.job_key, []).append(claim)
        watch_ids = sorted({int(c.plan["watch_id"]) for c in pending if c.plan and c.plan.get("watch_id") is not None})
        states: dict[int, WatchState] = await self._db(self.store.get_states, watch_ids)
        now = time.time()

        async def drain(queue: list[Claim]) -> bool:
            """True when the job is still held up."""
            status_ts: str | None = None
            for claim in queue:
                plan = claim.plan
                if plan is None:
                    continue
                if respect_backoff and float(plan.get("retry_at") or 0) > now:
                    return True
                watch_id = plan.get("watch_id")
                if status_ts is None and watch_id is not None and int(watch_id) in states:
                    status_ts = states[int(watch_id)].status_ts
                try:
                    status_ts = await self._execute(claim, plan, status_ts)
                except Demoted:
                    raise
                except Exception:
                    return True  # _execute logged it and counted the attempt
                if stats is not None:
                    stats.backlog += 1
            return False

        results = await asyncio.gather(*(drain(q) for q in queues.values()), return_exceptions=True)
        held: set[str] = set()
        for key, result in zip(queues, results, strict=True):
            if isinstance(result, Demoted):
                raise result
            if isinstance(result, BaseException):
                log.error("retrying the Slack actions of %s failed", key, exc_info=result)
                held.add(key)
            elif result:
                held.add(key)
        return held

    async def retry_pending(self) -> int:
        """Between slots: retry plans whose Slack actions failed, once their backoff expired.

        Watches with a run in flight are skipped (that run finishes their backlog itself);
        plans of watches removed meanwhile are closed as failed, not posted. Returns how
        many jobs are still waiting.
        """
        self._assert_leader()
        keys: list[str] = await self._db(self.store.pending_job_keys, owner=self.leadership.owner, epoch=self.epoch)
        if not keys:
            return 0
        existing = {w.id for w in await self._db(self.store.list_watches)}
        ids: set[int] = set()
        orphans: list[str] = []
        digests: list[str] = []
        for key in keys:
            kind, _, ref = key.partition(":")
            if kind == "digest":
                digests.append(key)
            elif kind == "watch" and ref.isdigit() and int(ref) in existing:
                ids.add(int(ref))
            else:
                orphans.append(key)
        if orphans:
            await self._drop_orphans(orphans)
        async with self._idle:
            ids -= self._busy
            self._busy |= ids
        try:
            held = await self._finish_backlog([_watch_key(i) for i in sorted(ids)], respect_backoff=True)
            if digests and not self._digest_lock.locked():
                async with self._digest_lock:
                    held |= await self._finish_backlog(digests, respect_backoff=True)
        finally:
            async with self._idle:
                self._busy -= ids
                self._idle.notify_all()
        return len(held)

    async def _drop_orphans(self, job_keys: list[str]) -> None:
        claims: list[Claim] = await self._db(
            self.store.adopt_unfinished,
            owner=self.leadership.owner,
            epoch=self.epoch,
            fence=self.leadership.fence(),
            job_keys=job_keys,
        )
        for claim in claims:
            log.info("dropping undelivered Slack actions of %s slot %d: watch removed", claim.job_key, claim.slot)
            await self._db(
                self.store.fail_claim, claim, claim.plan or {}, owner=self.leadership.owner,
                fence=self.leadership.fence(),
            )  # fmt: skip

    async def _execute(self, claim: Claim, plan: dict[str, Any], status_ts: str | None) -> str | None:
        """Perform the plan; on a transient failure count the attempt and re-raise (or give up).

        Returns the status message ts after the plan (for a following plan of the same watch).
        """
        try:
            return await self._perform(claim, plan, status_ts)
        except Demoted:
            raise
        except Exception as exc:
            if await self._record_failure(claim, plan, exc):
                return status_ts
            raise

    async def _record_failure(self, claim: Claim, plan: dict[str, Any], exc: Exception) -> bool:
        """Journal a failed attempt; True when the plan was given up (claim closed as failed)."""
        now = time.time()
        attempts = int(plan.get("attempts") or 0) + 1
        first = float(plan.setdefault("first_failed_at", now))
        plan["attempts"] = attempts
        plan["last_error"] = f"{type(exc).__name__}: {exc}"[:300]
        plan["retry_at"] = now + min(self.retry_backoff * 2 ** (attempts - 1), self.retry_backoff_max)
        if attempts >= self.max_attempts and now - first >= self.retry_window:
            undelivered = [a["op"] for a in plan["actions"] if not a.get("done")]
            watch_id = plan.get("watch_id")
            forget = int(watch_id) if watch_id is not None and "status" in undelivered else None
            closed = await self._db(
                self.store.fail_claim, claim, plan, owner=self.leadership.owner, fence=self.leadership.fence(),
                forget_status_of=forget,
            )  # fmt: skip
            if not closed:
                raise Demoted("claim lost while giving up on it") from exc
            log.error(
                "giving up on the Slack actions of %s slot %d after %d attempts over %.0fs (%s); "
                "undelivered: %s; claim marked failed",
                claim.job_key, claim.slot, attempts, now - first, plan["last_error"], ", ".join(undelivered),
            )  # fmt: skip
            return True
        log.warning(
            "Slack actions of %s slot %d failed (attempt %d): %s; will retry",
            claim.job_key, claim.slot, attempts, plan["last_error"],
        )  # fmt: skip
        try:
            await self._db(self.store.record_progress, claim, plan, owner=self.leadership.owner)
        except Exception as db_exc:  # the attempt count is advisory; the plan itself is saved
            log.warning("could not journal the failed attempt of %s slot %d: %s", claim.job_key, claim.slot, db_exc)
        return False

    async def _perform(self, claim: Claim, plan: dict[str, Any], status_ts: str | None) -> str | None:
        """Perform the journaled actions in order, skipping those already done."""
        channel = str(plan["channel"])
        watch_id = plan.get("watch_id")
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
                        status_ts = await self._post_once(claim, plan, action, channel, None)
                        assert watch_id is not None
                        new_status_ts = (int(watch_id), status_ts)
                    action["ts"] = status_ts
                elif action["op"] == "reply":
                    action["ts"] = await self._post_once(claim, plan, action, channel, status_ts)
                else:  # "digest": a top-level message of its own
                    action["ts"] = await self._post_once(claim, plan, action, channel, None)
            except SlackPostError as exc:
                if not exc.permanent:
                    raise
                log.error("Slack refused %s in %s: %s (dropped)", action["op"], channel, exc.error)
                action["error"] = exc.error
            action["done"] = True
            await self._db(
                self.store.record_progress, claim, plan, owner=self.leadership.owner, status_ts=new_status_ts
            )
            crashpoint("after_record")
        await self._db(self.store.finish, claim, owner=self.leadership.owner)
        return status_ts

    async def _post_once(
        self, claim: Claim, plan: dict[str, Any], action: dict[str, Any], channel: str, thread_ts: str | None
    ) -> str:
        """Post ``action`` unless an earlier attempt already did; returns the message ts.

        Before the request leaves, the attempt is journaled (``sent_at``). An action found with
        ``sent_at`` was attempted before — by a replica that died, or by this one when the
        answer never came — and Slack may have applied it: the channel is searched for the
        message by its ``{job, slot, op}`` metadata first, and what the search found is recorded
        (``found``: the ts, or ``None``). Only then is it (re)posted. A search Slack refuses for
        good (e.g. ``missing_scope``) falls back to posting, logged, since a missed alert is
        worse than a repeated one; a transient search failure is retried like a failed post.
        """
        payload = {"job": claim.job_key, "slot": claim.slot, "op": action["op"]}
        sent_at = action.get("sent_at")
        if sent_at is not None:
            try:
                found = await self.poster.find_post(channel, payload, oldest=float(sent_at), thread_ts=thread_ts)
            except SlackPostError as exc:
                if not exc.permanent:
                    raise
                log.warning(
                    "cannot search %s for the earlier %s of %s slot %d (%s); posting it again",
                    channel, action["op"], claim.job_key, claim.slot, exc.error,
                )  # fmt: skip
                found = None
            action["found"] = found
            if found is not None:
                log.info(
                    "%s of %s slot %d was already posted in %s (ts %s) by an earlier attempt; not posting again",
                    action["op"], claim.job_key, claim.slot, channel, found,
                )  # fmt: skip
                return found
        else:
            action["sent_at"] = time.time()
        recorded = await self._db(
            self.store.record_progress, claim, plan, owner=self.leadership.owner, fence=self.leadership.fence()
        )
        if recorded is False:
            raise Demoted("claim lost before posting")
        self._assert_leader()
        crashpoint("before_post")
        meta = {"event_type": "acrcheck_watch", "event_payload": payload}
        try:
            ts = await self.poster.post(channel, action["text"], thread_ts=thread_ts, metadata=meta)
        except SlackPostError as exc:
            if not exc.maybe_applied:  # refused or never sent: the next attempt need not search
                action.pop("sent_at", None)
            raise
        crashpoint("after_post")
        return ts

    # --- digest ------------------------------------------------------------------------

    async def digest(self, slot: datetime, *, allow_takeover: bool = False) -> int:
        """One summary message per channel with watches; returns how many were posted."""
        async with self._digest_lock:
            return await self._digest(slot, allow_takeover=allow_takeover)

    async def _digest(self, slot: datetime, *, allow_takeover: bool) -> int:
        self._assert_leader()
        rows: list[WatchRow] = await self._db(self.store.list_watches)
        by_channel: dict[str, list[WatchRow]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        slot_s = int(slot.timestamp())
        keys = [f"digest:{ch}" for ch in by_channel]
        held = await self._finish_backlog(keys, before_slot=slot_s)
        won: dict[str, Claim] = await self._db(
            self.store.claim_many,
            [k for k in keys if k not in held],
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
            try:
                await self._execute(claim, plan, None)
            except Demoted:
                raise
            except Exception:
                log.exception("digest for %s not posted yet; it will be retried", channel)
                continue
            posted += 1
        return posted
