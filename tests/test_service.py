"""The service's scheduler in process: jobs, backoff, date checks, follow-ups, reload, notify, stop.

Most tests build the jobs on a *paused* scheduler and call the job methods themselves with a
hand-made clock; one test runs the real scheduler threads with short intervals.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from core_helpers import interview, meeting
from memory_providers import MemoryCalendar, MemoryMailbox

from daemon.config import AccountConfig, Config, load_config
from daemon.core.model import ActionKind, DraftState, Event
from daemon.engine.pipeline import Engine
from daemon.engine.state import StateStore
from daemon.service.health import read_health, service_state
from daemon.service.scheduler import CHECK_SLACK, MAX_BACKOFF, Service, backoff_delay, poll_jitter
from providers.base import (
    AuthError,
    FetchResult,
    ProviderError,
    TransientError,
    Window,
)

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday; London = UTC in November
TOMORROW_2PM = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
PHONE = "+44 20 7946 0321"

CONFIG = """
user: {name: Alex Morgan, email: alex@example.com, timezone: Europe/London}
state: {path: state.sqlite3}
missed: {grace_minutes: 10, followup_after_hours: 20}
notify: {command: [notify-send, Salvage, "{message}", "{phone}"]}
accounts:
  - name: work
    poll_minutes: 2
    calendar: {type: ics, path: work.ics}
    drafts: {type: folder, path: out-work}
  - name: home
    poll_minutes: 10
    calendar: {type: ics, path: home.ics}
    drafts: {type: folder, path: out-home}
  - name: old
    enabled: false
    calendar: {type: ics, path: old.ics}
    drafts: {type: folder, path: out-old}
"""


class Clock:
    """A hand-moved clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class World:
    """A config file, a state store, in-memory providers, a clock and a notify recorder."""

    def __init__(self, tmp_path: Path) -> None:
        self.config_path = tmp_path / "config.yaml"
        self.config_path.write_text(CONFIG, encoding="utf-8")
        self.config: Config = load_config(self.config_path)
        assert self.config.state_path == tmp_path / "state.sqlite3"  # never the user's own state dir
        self.store = StateStore.open(self.config.state_path, check_same_thread=False)
        self.clock = Clock(NOW)
        self.calendars = {name: MemoryCalendar() for name in ("work", "home", "old", "new")}
        self.mailboxes = {name: MemoryMailbox() for name in ("work", "home", "old", "new")}
        self.notified: list[tuple[list[str], str, str | None]] = []
        self.desktop: list[str] | None = None  # the desktop notifier this machine has (none)
        self.services: list[Service] = []

    def engine(self, config: Config, store: StateStore) -> Engine:
        return Engine(config, store, open_calendar=lambda a, c: self.calendars[a.name],
                      open_drafts=lambda a, c: self.mailboxes[a.name])

    def notify(self, command: list[str], message: str, phone: str | None = None) -> bool:
        self.notified.append((list(command), message, phone))
        return True

    def service(self, *, start: bool = True, clock: Clock | None = None) -> Service:
        """A service over this world, its jobs built on a paused scheduler."""
        svc = Service(self.config, self.store, config_path=self.config_path, clock=clock or self.clock,
                      engine_factory=self.engine, notifier=self.notify, desktop=lambda: self.desktop)
        self.services.append(svc)
        if start:
            svc.start(paused=True)
        return svc

    def close(self) -> None:
        for svc in self.services:
            if svc.scheduler.running:
                svc.scheduler.shutdown(wait=False)
            svc.close()
        self.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def clash(start: datetime, *, key: str = "iv1", account: str = "work", phone: bool = False) -> list[Event]:
    """An interview and a meeting covering its start (a double booking, missed once it starts)."""
    extra = {"description": f"Scheduled via Greenhouse. If we get cut off, call me on {PHONE}."} if phone else {}
    return [interview(start, key=key, account=account, **extra),
            meeting(start - timedelta(minutes=30), key=f"{key}-meeting", account=account, minutes=120)]


def job_ids(svc: Service, prefix: str) -> list[str]:
    return sorted(j.id for j in svc.scheduler.get_jobs() if j.id.startswith(prefix))


# ---- pure helpers ---------------------------------------------------------------------------------


def test_backoff_doubles_is_capped_and_jittered() -> None:
    minute = timedelta(minutes=1)
    low = [backoff_delay(minute, n, rng=lambda: 0.5) for n in range(1, 8)]
    assert low[:5] == [minute, 2 * minute, 4 * minute, 8 * minute, 16 * minute]
    assert low[5] == low[6] == MAX_BACKOFF  # capped
    assert backoff_delay(minute, 1000, rng=lambda: 0.5) == MAX_BACKOFF
    assert backoff_delay(minute, 1, rng=lambda: 0.0) == minute * 0.9
    assert backoff_delay(minute, 1, rng=lambda: 1.0) == minute * 1.1
    # an account polled less often than the cap backs off to its own interval, not faster
    assert backoff_delay(timedelta(hours=2), 5, rng=lambda: 0.5) == timedelta(hours=2)
    # Retry-After is a floor, never a ceiling
    assert backoff_delay(minute, 1, 600.0, rng=lambda: 0.5) == timedelta(seconds=600)
    assert backoff_delay(minute, 4, 5.0, rng=lambda: 0.5) == 8 * minute


def test_poll_jitter_is_a_tenth_of_the_interval_at_most_30s() -> None:
    assert poll_jitter(timedelta(minutes=2)) == pytest.approx(12.0)
    assert poll_jitter(timedelta(seconds=3)) == pytest.approx(0.3)
    assert poll_jitter(timedelta(hours=1)) == 30.0


# ---- jobs -----------------------------------------------------------------------------------------


def test_one_poll_job_per_enabled_account_first_run_now(world: World) -> None:
    svc = world.service()
    assert job_ids(svc, "poll:") == ["poll:home", "poll:work"]  # "old" is disabled
    assert svc.scheduler.get_job("heartbeat") is not None
    for name, minutes in (("work", 2), ("home", 10)):
        job = svc.scheduler.get_job(f"poll:{name}")
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval == timedelta(minutes=minutes)
        assert job.trigger.jitter == pytest.approx(poll_jitter(timedelta(minutes=minutes)))
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)
        assert abs(job.next_run_time - NOW) < timedelta(seconds=1)
        assert job.args == (name,)
    assert (world.calendars["work"].calls, world.calendars["home"].calls) == (0, 0)  # nothing ran yet
    assert read_health(svc.health_file)["state"] == "running"


def test_poll_job_makes_drafts_and_records_the_next_poll(world: World) -> None:
    world.calendars["work"].events = clash(TOMORROW_2PM)
    svc = world.service()
    svc._poll_job("work")
    (draft,) = world.mailboxes["work"].drafts.values()
    assert re.search(r"reschedul|move|new time", draft.subject.lower()), draft.subject
    status = world.store.account_status("work")
    assert status is not None and status.error is None
    assert status.next_poll == svc.scheduler.get_job("poll:work").next_run_time
    svc._poll_job("work")
    assert len(world.mailboxes["work"].drafts) == 1
    health = read_health(svc.health_file)
    assert health["ok"] is True and health["live_drafts"] == 1
    assert world.notified == []  # a day ahead: no "call first"


def test_missed_checks_at_start_plus_grace_rebuilt_from_state(world: World) -> None:
    soon = NOW + timedelta(hours=3)
    world.calendars["work"].events = [*clash(soon), interview(NOW - timedelta(hours=2), key="past")]
    world.calendars["home"].events = [interview(TOMORROW_2PM, key="iv-home", account="home")]
    first = world.service()
    first._poll_job("work")
    first._poll_job("home")
    first.scheduler.shutdown(wait=False)

    # A restart: the checks come from the state store before any poll runs.
    calls = (world.calendars["work"].calls, world.calendars["home"].calls)
    svc = world.service()
    assert (world.calendars["work"].calls, world.calendars["home"].calls) == calls
    assert job_ids(svc, "check:") == ["check:home:iv-home", "check:work:iv1"]  # nothing for the past one
    grace = timedelta(minutes=10)
    for job_id, start, account in (("check:work:iv1", soon, "work"), ("check:home:iv-home", TOMORROW_2PM, "home")):
        job = svc.scheduler.get_job(job_id)
        assert isinstance(job.trigger, DateTrigger)
        assert job.trigger.run_date == start + grace + CHECK_SLACK
        assert job.args[0] == account

    # Rebuilding is idempotent; a moved interview moves its check; a gone one loses it.
    evaluation = svc.engine.evaluate(NOW)
    svc._schedule_checks(evaluation, NOW)
    svc._schedule_checks(evaluation, NOW)
    assert len(svc.scheduler.get_jobs()) == len(job_ids(svc, "")) == 5  # 2 polls, 2 checks, heartbeat
    world.calendars["work"].events = clash(soon + timedelta(hours=1))
    world.calendars["home"].events = []
    svc._poll_job("work")
    svc._poll_job("home")
    assert job_ids(svc, "check:") == ["check:work:iv1"]
    assert svc.scheduler.get_job("check:work:iv1").trigger.run_date == soon + timedelta(hours=1) + grace + CHECK_SLACK


def test_missed_check_job_drafts_the_apology_and_notifies_once(world: World, caplog: pytest.LogCaptureFixture) -> None:
    start = NOW + timedelta(hours=3)  # more than a day's notice is not needed: a reschedule first
    world.calendars["work"].events = clash(start, phone=True)
    svc = world.service()
    svc._poll_job("work")
    mailbox = world.mailboxes["work"]
    assert len(mailbox.drafts) == 1
    notified_before = len(world.notified)  # a short-notice reschedule may already say "call first"

    job = svc.scheduler.get_job("check:work:iv1")
    world.clock.now = job.next_run_time
    caplog.set_level(logging.WARNING, logger="salvage.daemon.service.scheduler")
    job.func(*job.args)  # what the scheduler would run at start + grace
    (draft,) = mailbox.drafts.values()
    assert re.search(r"apolog|sorry", draft.subject.lower()), draft.subject
    (record,) = world.store.drafts(states=[DraftState.UNTOUCHED])
    assert record.kind is ActionKind.MISSED
    new = world.notified[notified_before:]
    assert len(new) == 1
    command, message, phone = new[0]
    assert command == ["notify-send", "Salvage", "{message}", "{phone}"]
    assert phone == PHONE and PHONE in message and "Technical interview - Acme Robotics" in message
    assert any("Missed interview" in r.getMessage() for r in caplog.records)

    # The next passes keep the draft and do not notify again, nor does a restart.
    world.clock.advance(minutes=2)
    svc._poll_job("work")
    world.service()._poll_job("work")
    assert len(world.notified) == notified_before + 1
    assert len(mailbox.drafts) == 1


def test_no_notify_command_means_only_the_draft_and_the_log(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.config = world.config.model_copy(update={"notify": world.config.notify.model_copy(update={"command": None})})
    world.calendars["work"].events = clash(NOW - timedelta(minutes=15), phone=True)  # missed a few minutes ago
    caplog.set_level(logging.WARNING, logger="salvage.daemon.service.scheduler")
    world.service()._poll_job("work")
    assert [d.subject for d in world.mailboxes["work"].drafts.values()]
    assert world.notified == []
    assert any(PHONE in r.getMessage() for r in caplog.records if r.name == "salvage.daemon.service.scheduler")


def test_without_a_command_the_desktop_notifier_says_whom_to_call_and_what_to_say(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.config = world.config.model_copy(update={"notify": world.config.notify.model_copy(update={"command": None})})
    world.desktop = ["notify-send", "--urgency=critical", "Salvage: call first", "{message}"]
    world.calendars["work"].events = clash(NOW - timedelta(minutes=15), phone=True)
    world.service()._poll_job("work")
    ((command, message, phone),) = world.notified
    assert command == world.desktop and phone == PHONE
    assert PHONE in message and 'Say: "Hello, this is Alex Morgan. I am so sorry I missed our interview at' in message
    assert "Are you still free now, or could we reschedule?" in message
    # turned off: nothing but the log
    world.notified.clear()
    world.config = world.config.model_copy(update={"notify": world.config.notify.model_copy(update={"desktop": False})})
    world.calendars["work"].events = clash(NOW - timedelta(minutes=14), phone=True, key="iv2")
    world.service()._poll_job("work")
    assert world.notified == []


def test_follow_up_job_is_planned_from_the_missed_draft(world: World) -> None:
    start = NOW - timedelta(minutes=15)
    world.calendars["work"].events = clash(start)
    svc = world.service()
    svc._poll_job("work")
    (missed,) = world.store.drafts()
    assert missed.kind is ActionKind.MISSED and missed.created == NOW
    job = svc.scheduler.get_job("followup:work:iv1")
    assert job is not None and isinstance(job.trigger, DateTrigger)
    assert job.trigger.run_date == NOW + timedelta(hours=20) + CHECK_SLACK
    # rebuilt after a restart
    assert world.service().scheduler.get_job("followup:work:iv1").trigger.run_date == job.trigger.run_date

    world.clock.now = job.trigger.run_date
    svc.scheduler.get_job("followup:work:iv1").func(*job.args)
    kinds = sorted(r.kind.value for r in world.store.drafts(states=[DraftState.UNTOUCHED]))
    assert ActionKind.FOLLOW_UP.value in kinds
    assert svc.scheduler.get_job("followup:work:iv1") is None  # done: no job for the past



def test_a_laptop_that_slept_through_the_miss_handles_it_as_a_miss_when_it_wakes(world: World) -> None:
    start = NOW + timedelta(hours=2)
    world.calendars["work"].events = clash(start, phone=True)
    svc = world.service()
    svc._poll_job("work")  # a reschedule request, two hours ahead
    check = svc.scheduler.get_job("check:work:iv1").trigger.run_date
    assert check == start + timedelta(minutes=10) + CHECK_SLACK
    # the lid closes before the check; it opens nine hours after the start: the check misfired
    # (APScheduler skips it), the catch-up poll notices the miss now
    world.clock.now = start + timedelta(hours=9)
    world.service()._poll_job("work")
    kinds = sorted(r.kind.value for r in world.store.drafts(states=[DraftState.UNTOUCHED]))
    assert kinds == [ActionKind.MISSED.value]  # the apology first, never a follow-up
    case = world.store.case("iv1")
    assert case is not None and case.phase.value == "missed" and case.missed_at == world.clock.now
    # the follow-up falls due by wall time from when the miss was noticed; the service only schedules it
    job = world.service().scheduler.get_job("followup:work:iv1")
    assert job.trigger.run_date == world.clock.now + timedelta(hours=20) + CHECK_SLACK

# ---- faults ---------------------------------------------------------------------------------------


def test_failing_account_backs_off_logs_once_and_recovers(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.calendars["home"].error = ProviderError("calendar file home.ics does not exist")
    world.calendars["work"].events = clash(TOMORROW_2PM)
    svc = world.service()
    caplog.set_level(logging.DEBUG, logger="salvage")
    interval = timedelta(minutes=10)
    delays = []
    for _ in range(4):
        svc._poll_job("home")
        job = svc.scheduler.get_job("poll:home")
        delays.append(job.next_run_time - world.clock.now)
        assert world.store.account_status("home").next_poll == job.next_run_time
        world.clock.now = job.next_run_time
    for n, delay in enumerate(delays):
        expected = min(MAX_BACKOFF, interval * 2**n)
        assert expected * 0.9 <= delay <= expected * 1.1, (n, delay)
    status = world.store.account_status("home")
    assert status.failures == 4 and status.error and "home.ics" in status.error

    # the other account keeps producing drafts meanwhile
    svc._poll_job("work")
    assert len(world.mailboxes["work"].drafts) == 1
    assert read_health(svc.health_file)["ok"] is False

    # a Retry-After from the remote is honoured
    world.calendars["home"].error = TransientError("429 Too Many Requests", retry_after=7200)
    svc._poll_job("home")
    assert svc.scheduler.get_job("poll:home").next_run_time - world.clock.now >= timedelta(hours=2)

    world.calendars["home"].error = None
    svc._poll_job("home")
    svc._poll_job("home")
    assert world.store.account_status("home").error is None
    about_home = [r for r in caplog.records if r.levelno >= logging.INFO and "home" in r.getMessage()]
    failures = [r for r in about_home if r.levelno >= logging.WARNING]
    recoveries = [r for r in about_home if "recovered" in r.getMessage()]
    assert len(failures) == 1 and "home.ics" in failures[0].getMessage()
    assert len(recoveries) == 1


def test_a_crashing_pass_is_recorded_and_does_not_escape(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.calendars["work"].events = clash(TOMORROW_2PM)
    svc = world.service()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    svc.engine.run_once = broken  # type: ignore[method-assign]
    caplog.set_level(logging.ERROR, logger="salvage.daemon.service.scheduler")
    svc._poll_job("work")
    svc._poll_job("work")
    status = world.store.account_status("work")
    assert status is not None and status.failures == 2 and "disk on fire" in (status.error or "")
    assert len([r for r in caplog.records if "disk on fire" in r.getMessage()]) == 1
    assert svc.scheduler.get_job("poll:work").next_run_time > NOW


# ---- reload ---------------------------------------------------------------------------------------


def test_reload_with_a_bad_config_keeps_the_old_one(world: World, caplog: pytest.LogCaptureFixture) -> None:
    svc = world.service()
    old = svc.config
    caplog.set_level(logging.INFO, logger="salvage.daemon.service.scheduler")
    world.config_path.write_text(CONFIG.replace("poll_minutes: 2", "poll_minutes: -1"), encoding="utf-8")
    assert svc.reload() is False
    assert svc.config is old
    assert svc.scheduler.get_job("reload") is None
    problems = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "keeping the old one" in problems and "poll_minutes" in problems
    world.config_path.write_text("accounts: [", encoding="utf-8")
    assert svc.reload() is False and svc.config is old


def test_reload_with_a_good_config_rebuilds_the_poll_jobs(world: World) -> None:
    svc = world.service()
    old_engine = svc.engine
    text = CONFIG.replace("name: home", "name: new").replace("poll_minutes: 2", "poll_minutes: 7")
    world.config_path.write_text(text, encoding="utf-8")
    assert svc.reload() is True
    job = svc.scheduler.get_job("reload")  # applied by the worker, between jobs
    job.func(*job.args)
    assert svc.engine is not old_engine
    assert job_ids(svc, "poll:") == ["poll:new", "poll:work"]
    assert svc.scheduler.get_job("poll:work").trigger.interval == timedelta(minutes=7)
    assert [a.name for a in svc.config.accounts] == ["work", "new", "old"]


# ---- the real scheduler ---------------------------------------------------------------------------


def test_running_service_polls_at_once_and_stops_cleanly(world: World) -> None:
    """Real threads and the real clock: first polls run at start-up; a stop request lets the job finish."""
    now = datetime.now(UTC)
    world.calendars["work"].events = clash(now + timedelta(days=2))
    accounts: list[AccountConfig] = [a.model_copy(update={"poll_minutes": 0.05}) for a in world.config.accounts]
    world.config = world.config.model_copy(update={"accounts": accounts})
    svc = Service(world.config, world.store, config_path=world.config_path, engine_factory=world.engine,
                  notifier=world.notify)
    world.services.append(svc)
    svc.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not world.mailboxes["work"].drafts or world.calendars["home"].calls < 1):
        time.sleep(0.05)
    assert len(world.mailboxes["work"].drafts) == 1 and world.calendars["home"].calls >= 1

    slow = threading.Event()
    release = threading.Event()
    original = world.calendars["home"].fetch

    def slow_fetch(window: Window, cursor: str | None) -> FetchResult:
        slow.set()
        release.wait(5)
        return original(window, cursor)

    world.calendars["home"].fetch = slow_fetch  # type: ignore[method-assign]
    assert slow.wait(10), "the home account was not polled again within its interval"
    waiter = threading.Thread(target=svc.wait)
    waiter.start()
    svc.request_stop()
    waiter.join(5)
    assert not waiter.is_alive()
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    assert svc.shutdown(timeout=5) is True  # waited for the job in hand
    assert 0.2 < time.monotonic() - started < 5
    calls = world.calendars["work"].calls
    time.sleep(0.2)
    assert world.calendars["work"].calls == calls  # nothing runs after the stop
    health = read_health(svc.health_file)
    assert health["state"] == "stopped" and "stopped" in health


def test_shutdown_gives_up_on_a_stuck_job_after_the_timeout(world: World) -> None:
    stuck = threading.Event()
    release = threading.Event()

    def hang(window: Window, cursor: str | None) -> FetchResult:
        stuck.set()
        release.wait(10)
        return FetchResult(events=(), cursor="v")

    world.calendars["work"].fetch = hang  # type: ignore[method-assign]
    svc = Service(world.config, world.store, config_path=world.config_path, engine_factory=world.engine,
                  notifier=world.notify)
    world.services.append(svc)
    svc.start()
    try:
        assert stuck.wait(10)
        started = time.monotonic()
        assert svc.shutdown(timeout=0.3) is False
        assert time.monotonic() - started < 2
        health = read_health(svc.health_file)
        assert health is not None and health["state"] == "stopped"
    finally:
        release.set()
        # serve() never closes the store under a stuck job (it exits the process); here the worker
        # must be done with the store before the fixture closes it.
        assert svc.wait_idle(timeout=10)


def test_an_account_whose_auth_is_dead_is_parked_until_salvage_auth(world: World,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    world.calendars["home"].error = AuthError("Google refused the grant (invalid_grant); run `salvage auth home`")
    svc = world.service()
    caplog.set_level(logging.INFO, logger="salvage")
    interval = timedelta(minutes=10)
    svc._poll_job("home")
    assert world.calendars["home"].calls == 1 and world.store.account_status("home").needs_auth
    job = svc.scheduler.get_job("poll:home")
    assert job.next_run_time - world.clock.now <= interval * 1.1  # no transient backoff for a dead grant
    for _ in range(5):
        world.clock.advance(minutes=10)
        svc._poll_job("home")
    assert world.calendars["home"].calls == 1  # parked: the remote is not asked again
    assert world.store.account_status("home").needs_auth

    # `salvage auth home` (cmd_auth) renews the grant and clears the flag in the shared state
    world.calendars["home"].error = None
    world.store.record_failure("home", world.clock.now, "authorised again; waiting for the next poll")
    world.clock.advance(minutes=10)
    svc._poll_job("home")
    assert world.calendars["home"].calls == 2
    status = world.store.account_status("home")
    assert status.error is None and not status.needs_auth
    messages = [r.getMessage() for r in caplog.records if "home" in r.getMessage()]
    assert sum("paused until `salvage auth home`" in m for m in messages) == 1
    assert sum("polling resumes" in m for m in messages) == 1


# ---- one account can never starve the others --------------------------------------------------------


def test_a_hung_account_never_starves_the_others(world: World) -> None:
    """Real scheduler threads: `work` hangs in its calendar, `home` is polled and drafts all the same."""
    release = threading.Event()
    hung = threading.Event()

    def hang(window: Window, cursor: str | None) -> FetchResult:
        hung.set()
        release.wait(30)  # a server that accepted the connection and never answers
        return FetchResult(events=(), cursor="late")

    world.calendars["work"].fetch = hang  # type: ignore[method-assign]
    world.calendars["home"].events = clash(TOMORROW_2PM, account="home")
    clock = Clock(NOW)
    svc = Service(world.config, world.store, config_path=world.config_path, clock=clock,
                  engine_factory=world.engine, notifier=world.notify,
                  stuck=lambda account: timedelta(minutes=5), heartbeat_seconds=0.2)
    world.services.append(svc)
    svc.start()
    try:
        assert hung.wait(10)
        deadline = time.monotonic() + 10
        while not world.mailboxes["home"].drafts and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(world.mailboxes["home"].drafts) == 1  # drafted while `work` hangs
        while "home" in svc._running and time.monotonic() < deadline:  # and its pass has ended
            time.sleep(0.05)
        clock.advance(minutes=6)  # the hung pass is now far past what a pass may take
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = world.store.account_status("work")
            if status is not None and status.error:
                break
            time.sleep(0.05)
        assert status is not None and status.error is not None and "has not finished" in status.error
        health = read_health(svc.health_file)
        assert health is not None and health["updated"] == clock.now.isoformat()  # the heartbeat runs on
        assert not health["ok"] and [a["ok"] for a in health["accounts"] if a["enabled"]] == [False, True]
        home = world.store.account_status("home")
        assert home is not None and home.error is None and home.last_success is not None
    finally:
        release.set()
        assert svc.wait_idle(timeout=10)
    status = world.store.account_status("work")
    assert status is not None and status.error is None  # its pass finished: recovered


def test_a_missed_check_that_finds_its_account_busy_looks_again_soon(world: World) -> None:
    svc = world.service()
    with svc._job("work", "poll") as go:  # a pass of `work` is running (perhaps stuck)
        assert go
        svc._check_job("work", "iv1", "missed check")
    assert world.calendars["work"].calls == 0  # not run twice at once, and this worker not given to it
    job = svc.scheduler.get_job("check:work:iv1")
    assert job is not None and job.trigger.run_date == world.clock.now + timedelta(seconds=30)
    svc._check_job("work", "iv1", "missed check")  # once the account is free, it runs
    assert world.calendars["work"].calls == 1


# ---- a state file damaged while the service runs (issue 8, item 9) -------------------------------


def _damage(path: Path) -> None:
    """Overwrite the database and its WAL files in place, as a bad disk or a stray `cp` would."""
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            size = part.stat().st_size
            part.write_bytes((b"not a db" * (size // 8 + 1))[:size])


def test_a_state_file_damaged_mid_run_is_reported_once_and_retried(world: World, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli import main

    world.calendars["work"].events = clash(TOMORROW_2PM)
    svc = world.service()
    svc._poll_job("work")
    assert read_health(svc.health_file)["ok"] is True
    _damage(world.config.state_path)
    caplog.set_level(logging.DEBUG, logger="salvage")
    for _ in range(4):  # polls and the heartbeat keep coming
        world.clock.advance(minutes=5)
        svc._poll_job("work")
        svc._poll_job("home")
        svc._heartbeat()
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and "cannot be used" in errors[0].getMessage(), [r.getMessage() for r in errors]
    health = read_health(svc.health_file)
    assert health["ok"] is False and "not a database" in health["state_error"]
    assert health["updated"] == world.clock.now.isoformat()  # fresh, so monitors see it alive but failing

    code = main(["status", "--config", str(world.config_path), "--exit-code"])
    out = capsys.readouterr().out
    assert code == 1 and "cannot be read: cannot open state file" in out and "not a database" in out
    said = service_state(health, world.clock.now)
    assert said.problem and said.state == "state-error" and "keeps trying" in said.detail

    # The user moves the damaged file aside: the next poll starts a new state and goes on.
    for suffix in ("", "-wal", "-shm"):
        part = world.config.state_path.with_name(world.config.state_path.name + suffix)
        if part.exists():
            part.rename(tmp_path / f"damaged{suffix}")
    logging.getLogger().addHandler(caplog.handler)  # `salvage status` set up its own logging
    logging.getLogger("salvage").setLevel(logging.DEBUG)
    caplog.clear()
    svc._poll_job("work")
    assert svc.state_error is None and any("can be used again" in r.getMessage() for r in caplog.records)
    health = read_health(svc.health_file)
    assert health["ok"] is True and "state_error" not in health
    svc.close()
