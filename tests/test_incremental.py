"""Evaluation pays for what changed: unchanged answers write nothing, unchanged accounts are not decoded
or classified again, and passes that end their polls together share one evaluation."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from memory_providers import MemoryCalendar, MemoryMailbox
from test_pipeline import TOMORROW_2PM, interview, meeting

from daemon.config import parse_config
from daemon.core.model import Case, Event, Phase
from daemon.engine.pipeline import Engine, Evaluation
from daemon.engine.state import StateStore
from providers.base import FetchResult, ProviderError, Window

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NAMES = [f"acc{i}" for i in range(6)]


def config_for(names: list[str], tmp_path: Path):  # type: ignore[no-untyped-def]
    lines = ["user: {name: Alex Morgan, email: alex@example.com, timezone: Europe/London}", "accounts:"]
    for name in names:
        lines += [f"  - name: {name}", f"    calendar: {{type: ics, path: {name}.ics}}",
                  f"    drafts: {{type: folder, path: out-{name}}}"]
    return parse_config("\n".join(lines) + "\n", tmp_path / "config.yaml")


# ---- the store: only what differs is written ------------------------------------------------------


def test_a_repeated_full_answer_writes_nothing(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.sqlite3")
    a, b = meeting(TOMORROW_2PM, key="a", account="x"), meeting(TOMORROW_2PM, key="b", account="x")
    other = meeting(TOMORROW_2PM, key="o", account="y")
    assert store.apply_fetch("x", FetchResult(events=(a, b), cursor="1"), NOW) == 2
    assert store.apply_fetch("y", FetchResult(events=(other,), cursor="1"), NOW) == 1
    generation, versions = store.generation(), store.event_versions()
    assert store.apply_fetch("x", FetchResult(events=(b, a), cursor="2"), NOW) == 0  # same events, any order
    assert (store.generation(), store.event_versions()) == (generation, versions)
    assert store.cursor("x") == "2"
    moved = replace(a, title="Planning, moved")
    assert store.apply_fetch("x", FetchResult(events=(moved,), cursor="3"), NOW) == 2  # a changed, b gone
    assert store.generation() > generation
    after = store.event_versions()
    assert after["x"] > versions["x"] and after["y"] == versions["y"]
    assert [e.title for e in store.events(["x"])] == ["Planning, moved"]
    # a delta naming an event that is not stored removes nothing and changes nothing
    assert store.apply_fetch("x", FetchResult(removed=("nope",), complete=False, cursor="4"), NOW) == 0
    assert store.event_versions() == after


def test_bookkeeping_is_not_news_but_the_users_word_is(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.sqlite3")
    event = interview(TOMORROW_2PM)
    store.apply_fetch("work", FetchResult(events=(event,), cursor="1"), NOW)
    generation = store.generation()
    case = Case(key=event.occurrence_key, account="work", phase=Phase.SCHEDULED, event=event, opened=NOW, seen=NOW)
    store.save_cases([case], NOW)  # a pass writing down its own evaluation
    assert store.generation() == generation
    assert store.close_case(event.occurrence_key, NOW, "withdrew")  # `salvage done`
    assert store.generation() > generation
    closed = store.generation()
    store.reopen_case(event.occurrence_key, NOW, "missed after all")
    assert store.generation() > closed


# ---- the engine: unchanged accounts are kept ------------------------------------------------------


class Counting(StateStore):
    """A store that counts which accounts' events were read."""

    reads: list[str]

    def account_events(self, account: str) -> tuple[int, list[tuple[str, str, Event]]]:
        self.reads.append(account)
        return super().account_events(account)


class World:
    def __init__(self, tmp_path: Path, names: list[str] = NAMES) -> None:
        self.tmp_path = tmp_path
        self.config = config_for(names, tmp_path)
        self.store = Counting.open(tmp_path / "state.sqlite3", check_same_thread=False)
        self.store.reads = []
        self.calendars = {n: MemoryCalendar() for n in names}
        self.mailboxes = {n: MemoryMailbox() for n in names}
        for i, name in enumerate(names):
            self.calendars[name].events = [meeting(TOMORROW_2PM + timedelta(hours=i), key=f"m{i}", account=name)]
        self.engine = self.fresh_engine()

    def fresh_engine(self) -> Engine:
        return Engine(self.config, self.store, open_calendar=lambda account, ctx: self.calendars[account.name],
                      open_drafts=lambda account, ctx: self.mailboxes[account.name])


def same_view(a: Evaluation, b: Evaluation) -> None:
    assert a.events == b.events
    assert a.classifications == b.classifications
    assert a.risks == b.risks
    assert a.actions == b.actions
    assert a.wakeups == b.wakeups


def test_only_the_changed_account_is_read_again_and_the_plan_is_the_same(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.engine.run_once(NOW)
    assert sorted(world.store.reads) == sorted(NAMES)
    world.store.reads.clear()
    # acc2 gets an interview that clashes with its meeting: only acc2 is decoded and classified again
    world.calendars["acc2"].events.append(interview(TOMORROW_2PM + timedelta(hours=2), key="iv", account="acc2"))
    report = world.engine.run_once(NOW + timedelta(minutes=5))
    assert world.store.reads == ["acc2"]
    assert [o.result for o in report.outcomes] == ["created"]
    assert report.evaluation is not None
    world.store.reads.clear()
    # the pass kept what the interview's invitation email says with the event: acc2 is read once more
    kept = world.engine.evaluate(NOW + timedelta(minutes=5))
    assert world.store.reads == ["acc2"]
    world.store.reads.clear()
    same_view(kept, world.fresh_engine().evaluate(NOW + timedelta(minutes=5)))
    assert sorted(world.store.reads) == sorted(NAMES)  # a new engine reads everything once
    # an account turned off drops out of the evaluation without reading the others
    world.store.reads.clear()
    accounts = [a.model_copy(update={"enabled": a.name != "acc0"}) for a in world.config.accounts]
    world.engine.config = world.config.model_copy(update={"accounts": accounts})
    off = world.engine.evaluate(NOW + timedelta(minutes=6))
    assert world.store.reads == [] and all(e.account != "acc0" for e in off.events)


def test_the_window_moves_over_kept_events(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.engine.run_once(NOW)
    later = NOW + timedelta(days=world.config.window.past_days + 3)  # yesterday's meetings fall out
    world.store.reads.clear()
    moved = world.engine.evaluate(later)
    assert world.store.reads == []
    same_view(moved, world.fresh_engine().evaluate(later))


# ---- passes that end their polls together share one evaluation -----------------------------------


class SlowEngine(Engine):
    """Counts evaluations and makes each take a while, as a thousand accounts' evaluation does."""

    made = 0

    def evaluate(self, now: datetime) -> Evaluation:
        type(self).made += 1
        threading.Event().wait(0.2)
        return super().evaluate(now)


class GatedCalendar(MemoryCalendar):
    def __init__(self, gate: threading.Barrier) -> None:
        super().__init__()
        self.gate = gate

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        self.gate.wait(timeout=30)  # every account's answer arrives at the same moment
        return super().fetch(window, cursor)


@pytest.mark.parametrize("accounts", [12])
def test_passes_ending_together_share_an_evaluation(tmp_path: Path, accounts: int) -> None:
    names = [f"acc{i}" for i in range(accounts)]
    world = World(tmp_path, names)
    gate = threading.Barrier(accounts)
    for i, name in enumerate(names):
        calendar = GatedCalendar(gate)
        calendar.events = [meeting(TOMORROW_2PM + timedelta(hours=i), key=f"m{i}", account=name)]
        world.calendars[name] = calendar
    SlowEngine.made = 0
    engine = SlowEngine(world.config, world.store, open_calendar=lambda a, ctx: world.calendars[a.name],
                        open_drafts=lambda a, ctx: world.mailboxes[a.name])
    seen: dict[str, Evaluation] = {}

    def one_pass(name: str) -> None:
        report = engine.run_once(NOW, accounts=[name])
        assert report.evaluation is not None
        seen[name] = report.evaluation

    threads = [threading.Thread(target=one_pass, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(seen) == sorted(names)
    for name, evaluation in seen.items():  # each pass acted on an evaluation holding its own poll
        assert any(e.account == name for e in evaluation.events), name
    assert SlowEngine.made < accounts / 2, f"{SlowEngine.made} evaluations for {accounts} passes"
    # and a pass whose poll changes nothing afterwards makes none
    for calendar in world.calendars.values():
        calendar.gate = threading.Barrier(1)
    made = SlowEngine.made
    engine.run_once(NOW + timedelta(minutes=1), accounts=["acc3"])
    assert SlowEngine.made == made


# ---- the service: a quiet pass costs its own account, not all of them ------------------------------


def test_quiet_passes_leave_the_health_file_and_the_date_jobs_alone(tmp_path: Path) -> None:
    import test_service
    from test_service import clash

    from daemon.service.health import read_health

    world = test_service.World(tmp_path)
    try:
        world.calendars["work"].events = clash(TOMORROW_2PM)
        svc = world.service()
        svc._poll_job("work")  # news: a draft was made, so the health file says so at once
        first = read_health(svc.health_file)
        assert first["live_drafts"] == 1
        rebuilt: list[object] = []
        real = svc._rebuild_checks
        svc._rebuild_checks = lambda evaluation, now: (rebuilt.append(evaluation), real(evaluation, now))  # type: ignore[method-assign]
        world.clock.advance(seconds=0.001)
        svc._poll_job("home")  # quiet, moments later: the file is not rewritten
        assert read_health(svc.health_file)["updated"] == first["updated"]
        assert len(rebuilt) == 1  # the new draft is news to the plan: evaluated afresh, jobs rebuilt
        svc._poll_job("work")
        svc._poll_job("home")
        assert read_health(svc.health_file)["updated"] == first["updated"]
        assert len(rebuilt) == 1  # the same evaluation: the same date jobs
        assert svc.scheduler.get_job("health-flush") is not None  # what was not written is, soon
        world.clock.advance(seconds=1)
        svc._flush_health()
        assert read_health(svc.health_file)["updated"] == world.clock.now.isoformat()
        world.clock.advance(seconds=5)  # a quiet pass later on writes it (the heartbeat would too)
        svc._poll_job("home")
        assert read_health(svc.health_file)["updated"] == world.clock.now.isoformat()
        world.calendars["home"].error = ProviderError("home.ics: gone")
        world.clock.advance(seconds=0.001)
        svc._poll_job("home")  # a failure is news: written at once
        health = read_health(svc.health_file)
        assert health["updated"] == world.clock.now.isoformat() and health["ok"] is False
    finally:
        world.close()


# ---- a new process acts on the plan the last one left, while nothing changed ---------------------


def clash_world(tmp_path: Path) -> World:
    world = World(tmp_path, ["work", "home"])
    world.calendars["work"].events = [interview(TOMORROW_2PM),
                                      meeting(TOMORROW_2PM - timedelta(minutes=30), key="m-work")]
    return world


def test_a_new_engine_acts_on_the_kept_plan_until_something_changes(tmp_path: Path) -> None:
    world = clash_world(tmp_path)
    assert [o.result for o in world.engine.run_once(NOW).outcomes] == ["created"]
    world.engine.run_once(NOW + timedelta(minutes=1))  # the new draft is news: planned afresh, kept
    world.store.reads.clear()
    again = world.fresh_engine().run_once(NOW + timedelta(minutes=2))  # as `run --once` in a new process
    assert world.store.reads == []  # nothing decoded, classified or planned
    assert again.evaluation is not None and not again.evaluation.whole
    assert [(o.result, o.kind) for o in again.outcomes] == [("kept", "reschedule_request")]
    (outcome,) = again.outcomes
    whole = world.fresh_engine().run_once(NOW + timedelta(minutes=2), dry_run=True)  # planned afresh
    (planned,) = whole.outcomes
    assert outcome.draft is not None and planned.draft is not None
    assert (outcome.draft.subject, outcome.draft.text, outcome.draft.to) == (
        planned.draft.subject, planned.draft.text, planned.draft.to)
    # the service's timers come from the kept plan too
    assert again.evaluation.wakeups == whole.evaluation.wakeups  # type: ignore[union-attr]

    # time: past REUSE_FOR the plan is made afresh
    world.store.reads.clear()
    world.fresh_engine().run_once(NOW + timedelta(minutes=30))
    assert sorted(world.store.reads) == ["home", "work"]
    # a calendar change: afresh
    world.store.reads.clear()
    world.calendars["home"].events = [meeting(TOMORROW_2PM + timedelta(days=2), key="h", account="home")]
    world.fresh_engine().run_once(NOW + timedelta(minutes=31))
    assert world.store.reads
    # another configuration: afresh
    world.fresh_engine().run_once(NOW + timedelta(minutes=32))
    world.store.reads.clear()
    changed = world.config.model_copy(update={"user": world.config.user.model_copy(update={"name": "Alex M."})})
    other = Engine(changed, world.store, open_calendar=lambda a, ctx: world.calendars[a.name],
                   open_drafts=lambda a, ctx: world.mailboxes[a.name])
    other.run_once(NOW + timedelta(minutes=33))
    assert sorted(world.store.reads) == ["home", "work"]


def test_something_happening_on_a_kept_plan_is_tracked_on_the_whole_view(tmp_path: Path) -> None:
    world = clash_world(tmp_path)
    world.engine.run_once(NOW)
    world.engine.run_once(NOW + timedelta(minutes=1))
    before = {c.key: c.phase for c in world.store.plan_context().cases}
    assert before
    world.mailboxes["work"].drafts.clear()  # the user deletes the draft
    report = world.fresh_engine().run_once(NOW + timedelta(minutes=2))
    assert report.evaluation is not None and not report.evaluation.whole
    assert [o.result for o in report.outcomes] == ["deleted"]
    after = {c.key: c for c in world.store.plan_context().cases}
    assert set(after) == set(before) and not any(c.gone for c in after.values())
    # and the next pass plans afresh: the deleted draft is not made again
    later = world.fresh_engine().run_once(NOW + timedelta(minutes=3))
    assert later.evaluation is not None and later.evaluation.whole
    assert "created" not in [o.result for o in later.outcomes] and world.mailboxes["work"].drafts == {}


def test_an_unreadable_kept_plan_is_planned_afresh(tmp_path: Path) -> None:
    world = clash_world(tmp_path)
    world.engine.run_once(NOW)
    world.engine.run_once(NOW + timedelta(minutes=1))
    generation, _ = world.store.load_plan() or (0, "")
    world.store.save_plan(generation, '{"format": 1, "fingerprint": "x", "actions": [')
    world.store.reads.clear()
    report = world.fresh_engine().run_once(NOW + timedelta(minutes=2))
    assert report.evaluation is not None and report.evaluation.whole
    assert [o.result for o in report.outcomes] == ["kept"]


def test_a_lone_pass_that_made_drafts_leaves_a_plan_the_next_process_can_act_on(tmp_path: Path) -> None:
    world = clash_world(tmp_path)
    world.engine.alone = True  # as `run --once`: the instance lock keeps everyone else out
    assert [o.result for o in world.engine.run_once(NOW).outcomes] == ["created"]
    kept = world.store.load_plan()
    assert kept is not None and kept[0] == world.store.generation()  # the plan after its own drafts
    again = world.fresh_engine().evaluate(NOW)  # planned from scratch over the same state: the same
    left = world.engine._last
    assert left is not None
    assert left.evaluation.actions == again.actions and left.evaluation.wakeups == again.wakeups
    world.store.reads.clear()
    later = world.fresh_engine()
    later.alone = True
    report = later.run_once(NOW + timedelta(minutes=2))
    assert world.store.reads == [] and [o.result for o in report.outcomes] == ["kept"]
