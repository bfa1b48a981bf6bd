"""`salvage run`: the long-running service.

APScheduler 3.x runs the jobs in a pool of worker threads, one pass per account at a time, so one
account can never starve the others: a calendar or mailbox that does not answer (or a huge file)
holds up only its own account's passes; every other account is polled and checked on schedule. The
state store is the single writer (one SQLite connection; every store call is serialised by the
store's own lock), and an account's provider clients are only used by that account's pass. The
heartbeat has an executor of its own, so the health file stays fresh whatever the passes do, and it
marks an account whose pass has run far longer than it should as failing (``salvage status`` shows
it) until that pass ends:

- ``poll:<account>`` — an interval job per enabled account (``poll_minutes``, jittered, first run at
  start-up). A failing account's next poll is pushed back exponentially (capped, jittered,
  Retry-After honoured); it is logged once when it starts failing and once when it recovers.
- ``check:<account>:<occurrence>`` — a date job per upcoming interview at start + grace, so a miss
  is noticed within seconds of the grace period ending rather than at the next poll.
- ``followup:<account>:<occurrence>`` — a date job when the follow-up apology of a missed interview
  falls due.
- ``heartbeat`` — rewrites the health file every minute, proving the worker is not stuck.

Every job runs a pass for its account (:meth:`Engine.run_once`); after each pass the date jobs are
rebuilt from the pass's evaluation, which comes from the state store, so a restart loses nothing.
SIGTERM/SIGINT let the job in hand finish, save and exit 0; SIGHUP reloads the config (a bad one is
logged and the old one kept).
"""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon import __version__
from daemon.config import AccountConfig, Config, ConfigError, load_config
from daemon.core.model import ActionKind, utc_now
from daemon.engine.pipeline import Engine, Evaluation, Outcome, PassReport, Result
from daemon.engine.state import LIVE_STATES, StateError, StateStore
from daemon.service.health import (
    HEALTH_VERSION,
    account_json,
    accounts_health,
    health_path,
    read_health,
    write_health,
)
from daemon.service.lock import InstanceLock, LockError
from daemon.service.notify import call_script, desktop_command, notify

log = logging.getLogger(f"salvage.{__name__}")

UTC = timezone.utc
STOP_GRACE_SECONDS = 10.0  # how long SIGTERM waits for the job in hand
CHECK_SLACK = timedelta(seconds=5)  # run the missed check just after start + grace
MAX_BACKOFF = timedelta(minutes=30)  # a failing account is polled at least this often (or its interval)
MISFIRE_GRACE_SECONDS = 3600  # date jobs later than this (after a suspend) are skipped; polls catch up
HEARTBEAT_SECONDS = 60
MAX_JITTER_SECONDS = 30.0
MAX_WORKERS = 128  # pass threads; each enabled account needs at most one (its passes never overlap)
STUCK_FLOOR = timedelta(minutes=10)  # a pass running longer than this (and two intervals) is stuck
BUSY_RETRY = timedelta(seconds=30)
HEALTH_GAP_PER_ACCOUNT = 0.005  # seconds between two health writes after quiet passes, per account
JOB_PREFIX = {"missed check": "check", "follow-up": "followup"}  # date job ids by what they do; else "wake"  # a missed check that found its account busy runs again this soon

EngineFactory = Callable[[Config, StateStore], Engine]


def backoff_delay(interval: timedelta, failures: int, retry_after: float | None = None,
                  rng: Callable[[], float] = random.random) -> timedelta:
    """How long to wait before polling an account that failed ``failures`` times in a row.

    The interval doubles with each failure up to ``max(interval, MAX_BACKOFF)``, jittered by ±10 %;
    a Retry-After from the remote is a floor.
    """
    cap = max(interval, MAX_BACKOFF)
    steps = max(0, min(failures - 1, 30))
    delay = min(cap, interval * (2**steps))
    delay = delay * (0.9 + 0.2 * rng())
    if retry_after is not None and retry_after > 0:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def stuck_after(account: AccountConfig) -> timedelta:
    """How long one pass of ``account`` may run before it is reported as stuck."""
    return max(STUCK_FLOOR, 2 * timedelta(minutes=account.poll_minutes))


def pass_workers(config: Config) -> int:
    """Worker threads for the passes: one per enabled account (and a spare for a reload), capped."""
    return max(2, min(MAX_WORKERS, sum(1 for a in config.accounts if a.enabled) + 1))


def poll_jitter(interval: timedelta) -> float:
    """Seconds of jitter for an interval job: 10 % of the interval, at most 30 s."""
    return min(MAX_JITTER_SECONDS, interval.total_seconds() * 0.1)


class Service:
    """The scheduler, the engine and the store of one running service."""

    def __init__(
        self,
        config: Config,
        store: StateStore,
        *,
        config_path: Path | None = None,
        dry_run: bool = False,
        clock: Callable[[], datetime] = utc_now,
        engine_factory: EngineFactory = Engine,
        notifier: Callable[..., bool] = notify,
        desktop: Callable[[], list[str] | None] = desktop_command,
        stuck: Callable[[AccountConfig], timedelta] = stuck_after,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.config = config
        self.store = store
        self.config_path = config_path
        self.dry_run = dry_run
        self._clock = clock
        self._engine_factory = engine_factory
        self._notify = notifier
        self._desktop = desktop
        self._said_no_desktop = False
        self.engine = engine_factory(config, store)
        self.health_file = health_path(config)
        self.started = clock()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=pass_workers(config)),
                       "health": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        )
        self._stuck = stuck
        self._heartbeat_seconds = heartbeat_seconds
        self._meta = threading.Condition()  # guards the three below; notified when a job ends
        self._account_locks: dict[str, threading.Lock] = {}  # one pass per account at a time
        self._running: dict[str, tuple[datetime, str]] = {}  # account (or "*") -> (since, what)
        self._flagged: set[str] = set()  # accounts reported stuck, until their pass ends
        self._health_lock = threading.Lock()
        self._health_written: datetime | None = None  # when the health file was last written
        self._health_due = False  # a quiet pass's news waits in a one-off job (see _write_health)
        self._checks_from: Evaluation | None = None  # the evaluation the date jobs were last built from
        self._jobs_lock = threading.RLock()  # passes rebuild the date jobs concurrently
        self._stopping = threading.Event()
        self._parked: set[str] = set()  # accounts waiting for `salvage auth`
        self._stop_requested = threading.Event()
        self._reload_requested = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self.passes = 0
        self.state_error: str | None = None  # set while the state file cannot be used
        self._reopened = False  # the store is one this service opened (after a damaged file)
        self._reopen_lock = threading.Lock()
        self._retired: list[tuple[Engine, StateStore]] = []  # replaced after damage; closed at close()

    # ---- life cycle (main thread) ---------------------------------------------------------------

    def start(self, *, paused: bool = False) -> None:
        """Build every job from the config and the state store, then start the scheduler.

        ``paused`` builds the jobs without running any (tests call the job methods themselves).
        """
        now = self._clock()
        self._schedule_polls(now)
        try:
            self._schedule_checks(self.engine.evaluation(now, dry_run=self.dry_run)[0], now)
        except Exception as exc:  # noqa: BLE001 - the first polls will try again
            log.error("could not plan the missed-interview checks from the state: %s: %s", type(exc).__name__, exc)
        self.scheduler.add_job(self._heartbeat, IntervalTrigger(seconds=self._heartbeat_seconds, timezone=UTC),
                               id="heartbeat", name="heartbeat", replace_existing=True, executor="health")
        # Start paused: the jobs get their next run times in the job store, and the health file can be
        # written from this thread before the worker may touch the store.
        self.scheduler.start(paused=True)
        self._write_health(now)
        if not paused:
            self.scheduler.resume()
        names = ", ".join(a.name for a in self.engine.accounts()) or "none"
        log.info("salvage %s running%s; accounts: %s; state: %s", __version__,
                 " (dry run: no mailbox is changed)" if self.dry_run else "", names, self.config.state_path)

    def request_stop(self) -> None:
        """Ask the main loop to stop (safe from a signal handler or another thread)."""
        self._stop_requested.set()
        self._wake()

    def request_reload(self) -> None:
        """Ask the main loop to reload the config (safe from a signal handler or another thread)."""
        self._reload_requested.set()
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full or closed: the loop is awake anyway

    def wait(self) -> None:
        """Block until a stop is requested, handling reload requests on the way."""
        while not self._stop_requested.is_set():
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self.reload()
                continue
            try:
                select.select([self._wake_r], [], [])
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for old kernels
                pass
            try:
                while os.read(self._wake_r, 512):
                    pass
            except (BlockingIOError, OSError):
                pass

    def reload(self) -> bool:
        """Re-read the config file; keep the old config (and say why) when the new one is bad."""
        log.info("reloading the configuration")
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("the new configuration is invalid; keeping the old one:")
            for problem in exc.problems:
                log.error("  - %s", problem)
            return False
        if new.state_path != self.config.state_path:
            log.warning("state.path changed to %s: restart salvage to use it; still using %s",
                        new.state_path, self.config.state_path)
            new = new.model_copy(update={"state": self.config.state})
        self.scheduler.add_job(self._apply_config, args=(new,), id="reload", name="reload",
                               replace_existing=True, next_run_time=datetime.now(UTC), misfire_grace_time=None)
        return True

    def shutdown(self, timeout: float = STOP_GRACE_SECONDS) -> bool:
        """Stop scheduling, let the jobs in hand finish, save. False if one outlived ``timeout``."""
        self._stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if not self.wait_idle(timeout):
            with self._meta:
                stuck = ", ".join(sorted(self._running))
            log.warning("the pass of %s did not finish within %gs; exiting without it "
                        "(its work is redone at the next start)", stuck, timeout)
            self._mark_stopped(None)
            return False
        self._mark_stopped(self._clock())
        self.engine.close()
        log.info("salvage stopped")
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is running; False if one still runs after ``timeout`` seconds."""
        with self._meta:
            return self._meta.wait_for(lambda: not self._running, timeout=timeout)

    def close(self) -> None:
        """Release the wake-up pipe (after the signal handlers are gone), and a store it reopened."""
        for engine, store in self._retired:
            engine.close()
            try:
                store.close()
            except sqlite3.Error:
                pass
        self._retired.clear()
        if self._reopened:
            self.store.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # ---- jobs (worker thread) -------------------------------------------------------------------

    @contextmanager
    def _job(self, name: str = "*", what: str = "job") -> Iterator[bool]:
        """One job of an account at a time; yields False when it must not run now.

        False when the service is stopping, or when another pass of the same account is still
        running (it may be stuck: then this worker is not given to it as well).
        """
        if self._stopping.is_set():
            yield False
            return
        with self._meta:
            lock = self._account_locks.setdefault(name, threading.Lock())
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            with self._meta:
                self._running[name] = (self._clock(), what)
            yield not self._stopping.is_set()
        finally:
            with self._meta:
                self._running.pop(name, None)
                self._flagged.discard(name)
                self._meta.notify_all()
            lock.release()

    def _poll_job(self, name: str) -> None:
        with self._job(name, "poll") as go:
            if go:
                self._safely(name, "poll")
            elif not self._stopping.is_set():
                log.debug("%s: the last pass is still running; this poll is skipped", name)

    def _check_job(self, name: str, occurrence_key: str, what: str) -> None:
        with self._job(name, what) as go:
            if go:
                log.debug("%s: %s for %s", name, what, occurrence_key)
                self._safely(name, what)
                return
        if not self._stopping.is_set():  # its account is busy: look again soon, not at the next poll
            job_id = f"{JOB_PREFIX.get(what, 'wake')}:{name}:{occurrence_key}"
            when = self._clock() + BUSY_RETRY
            try:
                self.scheduler.add_job(self._check_job, DateTrigger(run_date=when, timezone=UTC),
                                       args=(name, occurrence_key, what), id=job_id, name=f"{what} {name}",
                                       replace_existing=True)
            except Exception:  # noqa: BLE001 - the scheduler is shutting down
                log.debug("could not reschedule %s", job_id, exc_info=True)

    def _safely(self, name: str, what: str) -> None:
        try:
            if self.state_error is not None:
                self._reopen_store()  # the user may have restored or moved the file aside meanwhile
            self._pass(name, what)
        except (sqlite3.DatabaseError, StateError) as exc:
            self._state_failed(exc)
            return
        except Exception as exc:  # noqa: BLE001 - e.g. the disk is full; the next job tries again
            log.error("%s: %s failed: %s: %s", name, what, type(exc).__name__, exc)
            log.debug("%s failed", what, exc_info=True)
            return
        if self.state_error is not None:
            log.info("the state file %s can be used again", self.config.state_path)
            self.state_error = None
            self._write_health(self._clock())

    # ---- a state file that cannot be used -------------------------------------------------------

    def _state_failed(self, exc: Exception) -> None:
        """A damaged or vanished state file: say so once (log, health file), keep trying at each job."""
        reason = str(exc)
        prefix = f"cannot open state file {self.config.state_path}: "
        if reason.startswith(prefix):  # the same damage, found when reopening
            reason = reason[len(prefix):]
        message = f"the state file {self.config.state_path} cannot be used: {reason}"
        with self._reopen_lock:  # passes of several accounts find it at once: one of them says so
            first, self.state_error = message != self.state_error, message
        if first:
            log.error("%s; Salvage keeps trying at every poll. If this lasts, stop the service and move the "
                      "file aside (a new one is made)",
                      message)
        else:
            log.debug("%s", message)
        self._write_health(self._clock())

    def _reopen_store(self) -> None:
        """Open the state file afresh and rebuild the engine over it (raises while it stays unusable).

        Other accounts' passes may still hold the old engine and store: those are kept (and fail
        quietly, the same damage) until the service closes, never closed under a running pass.
        """
        with self._reopen_lock:
            if self.state_error is None:
                return  # another pass reopened it and recovered meanwhile
            fresh = StateStore.open(self.config.state_path, check_same_thread=False)
            try:
                fresh.account_status(self.config.accounts[0].name if self.config.accounts else "")
            except sqlite3.DatabaseError:
                fresh.close()
                raise
            self._retired.append((self.engine, self.store))
            self.engine = self._engine_factory(self.config, fresh)
            self.store = fresh
            self._reopened = True

    def _heartbeat(self) -> None:
        """Every minute, on its own thread: report stuck passes, rewrite the health file."""
        if self._stopping.is_set():
            return
        now = self._clock()
        try:
            self._report_stuck(now)
        except (sqlite3.DatabaseError, StateError) as exc:
            self._state_failed(exc)  # writes the health file, saying so
            return
        self._write_health(now)

    def _report_stuck(self, now: datetime) -> None:
        """Mark each account whose pass has run longer than it may as failing (once per pass)."""
        with self._meta:
            running = [(n, since, what) for n, (since, what) in self._running.items() if n not in self._flagged]
        for name, since, what in running:
            account = self._account(name)
            if account is None or now - since <= self._stuck(account):
                continue
            minutes = max(1, int((now - since).total_seconds() // 60))
            message = (f"its {what} has not finished after {minutes} min (a calendar or mailbox that does "
                       "not answer?); the other accounts go on")
            if self.store.record_failure(name, now, message):
                log.error("%s: %s", name, message)
            with self._meta:
                self._flagged.add(name)

    def _apply_config(self, new: Config) -> None:
        with self._job() as go:
            if not go:
                return
            try:
                engine = self._engine_factory(new, self.store)
            except Exception as exc:  # noqa: BLE001 - e.g. a templates_dir that cannot be used
                log.error("cannot use the new configuration (%s: %s); keeping the old one", type(exc).__name__, exc)
                return
            old = self.engine
            self.engine, self.config = engine, new
            with self._meta:
                busy = set(self._running)
            for account in old.accounts():  # a pass still running keeps the clients it is using
                if account.name not in busy:
                    old.forget_connections(account.name)
            now = self._clock()
            self._schedule_polls(now)
            log.info("configuration reloaded: %d enabled account(s)", len(engine.accounts()))
            self._write_health(now)

    def _pass(self, name: str, what: str) -> None:
        """One pass for one account: poll, evaluate, reconcile; then notify, back off, reschedule."""
        account = self._account(name)
        if account is None:
            self._remove_job(f"poll:{name}")
            return
        before = self.store.account_status(name)
        if before is not None and before.needs_auth:
            # Parked: retrying a dead grant cannot succeed and only hammers the token endpoint.
            # `salvage auth NAME` clears the flag in the shared state; the next tick resumes.
            self._park(name)
            self._record_next_poll(name)
            return
        if name in self._parked:
            self._parked.discard(name)
            self.engine.forget_connections(name)  # read the new grant afresh
            log.info("%s: authorised again; polling resumes", name)
        was_failing = before is not None and before.error is not None
        now = self._clock()
        engine = self.engine  # a reload meanwhile does not change the engine under this pass
        try:
            report = engine.run_once(now, dry_run=self.dry_run, accounts=[name])
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the service
            log.debug("pass for %s crashed", name, exc_info=True)
            message = f"pass failed: {type(exc).__name__}: {exc}"
            if self.store.record_failure(name, now, message):
                log.error("%s: %s", name, message)
            self._back_off(account, None, now)
            self._write_health(now)
            return
        with self._meta:
            self.passes += 1
        poll = next((p for p in report.polls if p.account == name), None)
        if poll is not None and not poll.ok and poll.needs_auth:
            self._park(name)
        elif poll is not None and not poll.ok:
            self._back_off(account, poll.retry_after, now)
        elif was_failing and _healthy(self.store, name):  # not when the mailbox failed after the poll
            log.info("%s: recovered after %d failed poll(s)", name, before.failures if before else 0)
        self._after_pass(report, now)
        self._record_next_poll(name)
        if not self._stopping.is_set():  # shutdown() writes the final health file itself
            news = was_failing or (poll is not None and not poll.ok) or any(
                o.result not in (Result.KEPT, Result.EXISTS) for o in report.outcomes)
            self._write_health(now, quiet=not news)

    def _after_pass(self, report: PassReport, now: datetime) -> None:
        for outcome in report.outcomes:
            if outcome.call_first and outcome.result is Result.CREATED:
                self._call_first(outcome, report.evaluation)
        if report.evaluation is not None and not self._stopping.is_set():
            if report.evaluation is not self._checks_from:  # the same plan has the same date jobs
                self._schedule_checks(report.evaluation, now)

    def _call_first(self, outcome: Outcome, evaluation: Evaluation | None) -> None:
        event = evaluation.event_for(outcome.occurrence_key) if evaluation else None
        title = event.title if event else outcome.occurrence_key
        missed = outcome.kind == ActionKind.MISSED.value
        lead = "Missed interview" if missed else "Interview at risk"
        advice = " ".join(_sentence(note) for note in outcome.notes if note.strip()) or _sentence(
            f"Call them first: {outcome.phone}" if outcome.phone else "Call them first")
        script = ""
        if event is not None:
            start = event.span(self.config.user.zone)[0]
            script = " " + call_script(self.config.user.name, missed, start, self.config.user.zone, self._clock())
        message = f"{lead}: {title}. {advice}{script} A draft is waiting in your Drafts folder."
        log.warning("%s: %s", outcome.account, message)
        command = self.config.notify.command
        if not command and self.config.notify.desktop:
            command = self._desktop()
            if command is None and not self._said_no_desktop:
                self._said_no_desktop = True
                log.info("no desktop notifier (notify-send, osascript) here; set notify.command to be alerted")
        if command:
            self._notify(command, message, outcome.phone)

    def _park(self, name: str) -> None:
        """Stop polling an account whose authorisation is dead until `salvage auth` renews it."""
        if name not in self._parked:
            self._parked.add(name)
            log.info("%s: paused until `salvage auth %s`; the other accounts go on", name, name)

    def _back_off(self, account: AccountConfig, retry_after: float | None, now: datetime) -> None:
        status = self.store.account_status(account.name)
        failures = status.failures if status else 1
        delay = backoff_delay(timedelta(minutes=account.poll_minutes), failures, retry_after)
        when = now + delay
        job_id = f"poll:{account.name}"
        if not self._stopping.is_set() and self.scheduler.get_job(job_id) is not None:
            self.scheduler.modify_job(job_id, next_run_time=when)
        log.debug("%s: next poll in %.0fs (failure %d)", account.name, delay.total_seconds(), failures)

    def _record_next_poll(self, name: str) -> None:
        if self._stopping.is_set():
            return  # the jobs are going away; keep the last planned time
        self.store.set_next_poll(name, _next_run(self.scheduler.get_job(f"poll:{name}")))

    # ---- building jobs --------------------------------------------------------------------------

    def _account(self, name: str) -> AccountConfig | None:
        return next((a for a in self.config.accounts if a.name == name and a.enabled), None)

    def _schedule_polls(self, now: datetime) -> None:
        """One interval job per enabled account, first run now; jobs of other accounts removed."""
        wanted = {a.name: a for a in self.config.accounts if a.enabled}
        for job in self.scheduler.get_jobs():
            if job.id.startswith("poll:") and job.id[5:] not in wanted:
                job.remove()
        for index, (name, account) in enumerate(wanted.items()):
            interval = timedelta(minutes=account.poll_minutes)
            self.scheduler.add_job(
                self._poll_job,
                IntervalTrigger(seconds=interval.total_seconds(), jitter=poll_jitter(interval), timezone=UTC),
                args=(name,),
                id=f"poll:{name}",
                name=f"poll {name}",
                replace_existing=True,
                # the first polls run now, in config order (the worker runs them one after another)
                next_run_time=now + timedelta(microseconds=index),
                misfire_grace_time=None,  # a late poll (after a suspend) still runs, once
            )

    def _schedule_checks(self, evaluation: Evaluation, now: datetime) -> None:
        """Date jobs for missed checks and follow-ups, rebuilt to match the evaluation."""
        with self._jobs_lock:
            self._rebuild_checks(evaluation, now)
            self._checks_from = evaluation

    def _rebuild_checks(self, evaluation: Evaluation, now: datetime) -> None:
        wanted = self.timed_checks(evaluation, now)
        for job in self.scheduler.get_jobs():
            if job.id.startswith(("check:", "followup:")) and job.id not in wanted:
                job.remove()
        for job_id, (when, account, key, what) in wanted.items():
            job = self.scheduler.get_job(job_id)
            if job is not None and getattr(job.trigger, "run_date", None) == when:
                continue
            self.scheduler.add_job(self._check_job, DateTrigger(run_date=when, timezone=UTC),
                                   args=(account, key, what), id=job_id, name=f"{what} {account}",
                                   replace_existing=True)

    def timed_checks(self, evaluation: Evaluation, now: datetime) -> dict[str, tuple[datetime, str, str, str]]:
        """``job id -> (when, account, occurrence key, what)`` for every future wake-up the plan announced.

        The planner alone decides when a missed check or a follow-up falls due (by wall time, from the
        state store); the service only schedules those moments, a few seconds late so the pass sees them.
        """
        enabled = {a.name for a in self.config.accounts if a.enabled}
        wanted: dict[str, tuple[datetime, str, str, str]] = {}
        for wake in evaluation.wakeups:
            when = wake.when.astimezone(UTC) + CHECK_SLACK
            if wake.account in enabled and when > now:
                job_id = f"{JOB_PREFIX.get(wake.what, 'wake')}:{wake.account}:{wake.occurrence_key}"
                wanted[job_id] = (when, wake.account, wake.occurrence_key, wake.what)
        return wanted

    def _remove_job(self, job_id: str) -> None:
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    # ---- health ---------------------------------------------------------------------------------

    def health(self, now: datetime) -> dict[str, Any]:
        """The health file's content (see docs/service.md)."""
        checks = sorted(
            when for j in self.scheduler.get_jobs()
            if j.id.startswith(("check:", "followup:")) and (when := _next_run(j)) is not None
        )
        base = {
            "version": HEALTH_VERSION,
            "state": "running",
            "pid": os.getpid(),
            "salvage": __version__,
            "started": self.started.isoformat(),
            "updated": now.astimezone(UTC).isoformat(),
            "dry_run": self.dry_run,
            "state_file": str(self.config.state_path),
            "scheduled_checks": len(checks),
            "next_check": checks[0].astimezone(UTC).isoformat() if checks else None,
        }
        if self.state_error is None:
            try:
                accounts = accounts_health(self.config, self.store)
                live = len(self.store.drafts(states=LIVE_STATES))
            except sqlite3.DatabaseError as exc:  # found by the heartbeat: say so, keep the file fresh
                self.state_error = f"the state file {self.config.state_path} cannot be used: {exc}"
                log.error("%s; Salvage keeps trying at every poll", self.state_error)
            else:
                return {**base, "ok": all(a["ok"] for a in accounts if a["enabled"]), "accounts": accounts,
                        "live_drafts": live}
        return {**base, "ok": False, "state_error": self.state_error,
                "accounts": [account_json(a, None) for a in self.config.accounts], "live_drafts": None}

    def _write_health(self, now: datetime, *, quiet: bool = False) -> None:
        """Rewrite the health file; after a ``quiet`` pass (nothing failed, recovered or changed) at most
        every few seconds: with a thousand accounts, writing the whole file after every pass would cost
        more than the passes. What a skipped write would have said is written by a one-off job soon."""
        try:
            with self._health_lock:  # passes and the heartbeat write it from several threads
                # The clock as of writing, not ``now``: a pass that began before a heartbeat and ends
                # after it must not set the file's time back.
                at = max(now, self._clock())
                gap = timedelta(seconds=min(self._heartbeat_seconds,
                                            HEALTH_GAP_PER_ACCOUNT * len(self.config.accounts)))
                if quiet and self._health_written is not None and at - self._health_written < gap:
                    self._write_health_later(gap - (at - self._health_written))
                    return
                write_health(self.health_file, self.health(at))
                self._health_written = at
        except Exception as exc:  # noqa: BLE001 - monitoring must never stop the service
            log.warning("cannot write the health file %s: %s", self.health_file, exc)

    def _write_health_later(self, delay: timedelta) -> None:
        if self._health_due or self._stopping.is_set() or not self.scheduler.running:
            return
        self._health_due = True
        self.scheduler.add_job(self._flush_health, DateTrigger(run_date=datetime.now(UTC) + delay, timezone=UTC),
                               id="health-flush", name="health", replace_existing=True, executor="health")

    def _flush_health(self) -> None:
        self._health_due = False
        self._write_health(self._clock())

    def _mark_stopped(self, now: datetime | None) -> None:
        """Say in the health file that the service stopped on purpose."""
        try:
            data = self.health(now) if now is not None else (read_health(self.health_file) or {})
            data["state"] = "stopped"
            data["stopped"] = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
            write_health(self.health_file, data)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot write the health file %s: %s", self.health_file, exc)


def _healthy(store: StateStore, account: str) -> bool:
    status = store.account_status(account)
    return status is None or status.error is None


def _next_run(job: Any) -> datetime | None:
    """A job's next run time; None for a job not in a job store yet (added while the scheduler is stopped)."""
    return getattr(job, "next_run_time", None) if job is not None else None


def _sentence(text: str) -> str:
    """``text`` ending with a full stop (notes from the planner may or may not have one)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


# ---- the command ----------------------------------------------------------------------------------


@contextmanager
def _signals(service: Service) -> Iterator[None]:
    """SIGTERM/SIGINT stop, SIGHUP reloads; the previous handlers come back afterwards."""

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the job in hand", signal.Signals(signum).name)
        service.request_stop()

    def reload(signum: int, frame: FrameType | None) -> None:
        service.request_reload()

    wanted: dict[int, Callable[[int, FrameType | None], None]] = {signal.SIGTERM: stop, signal.SIGINT: stop}
    if hasattr(signal, "SIGHUP"):
        wanted[signal.SIGHUP] = reload
    previous = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(config_path: Path | None, *, dry_run: bool = False) -> int:
    """Run the service until SIGTERM/SIGINT; 0 on a clean stop, 2 when another instance runs."""
    config = load_config(config_path)
    lock = InstanceLock(config.state_path)
    try:
        lock.acquire()
    except LockError as exc:
        sys.stderr.write(f"salvage: {exc}\n")
        return 2
    clean = True
    try:
        store = StateStore.open(config.state_path, check_same_thread=False)
        service = Service(config, store, config_path=config_path, dry_run=dry_run)
        with _signals(service):
            service.start()
            service.wait()
            clean = service.shutdown()
        reopened = service.store is not store
        service.close()  # closes a store it reopened itself
        if clean and not reopened:
            store.close()
    finally:
        if clean:
            lock.release()
    if not clean:
        # The worker is stuck in a remote call; its thread would keep the process alive. Every write
        # is transactional and drafts are intent-first, so leaving now loses nothing.
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)
    return 0
