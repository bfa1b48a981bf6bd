"""Cases: the pure tracker (phases, rebooking, closing on evidence), the planner's wake-ups, and the store."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from core_helpers import RECRUITER, at, classified, interview, make_config, meeting

from daemon.core.cases import advance
from daemon.core.detect import detect
from daemon.core.model import (
    ActionKind,
    Case,
    DraftState,
    Event,
    Phase,
    PlanContext,
    PriorDraft,
    Slot,
)
from daemon.core.plan import plan_result
from daemon.engine.state import MIGRATIONS, DraftRecord, StateStore

LONDON = make_config()
NOW = at("2026-11-24 09:00")


def track(events: list[Event], now: datetime = NOW, cases: tuple[Case, ...] = (),
          prior: tuple[PriorDraft, ...] = (), marked: frozenset[str] = frozenset(),
          window: tuple[datetime, datetime] | None = None) -> dict[str, Case]:
    labels = classified(events, LONDON)
    risks = detect(events, labels, LONDON, now, marked_missed=marked)
    return advance(cases, events, labels, risks, prior, LONDON, now, marked=marked, window=window)


def missed_case(start: datetime, now: datetime) -> dict[str, Case]:
    return track([interview(start, key="old"), meeting(start - timedelta(minutes=30), key="m", minutes=120)], now=now)


def test_a_miss_opens_the_missed_phase_timed_from_when_it_was_noticed() -> None:
    start = NOW - timedelta(hours=5)
    cases = missed_case(start, NOW)
    assert cases["old"].phase is Phase.MISSED and cases["old"].missed_at == NOW and cases["old"].booked_start == start
    # once missed, it stays missed after the interview leaves the calendar's window
    later = track([], now=NOW + timedelta(days=3), cases=tuple(cases.values()),
                  window=(NOW + timedelta(days=2), NOW + timedelta(days=33)))
    assert later["old"].phase is Phase.MISSED and not later["old"].gone


def test_a_new_invitation_from_the_same_company_rebooks_a_missed_case_but_not_from_a_stranger() -> None:
    start = NOW - timedelta(hours=5)
    stored = tuple(missed_case(start, NOW).values())
    later = NOW + timedelta(hours=3)
    for organizer, linked in (("priya@acme-robotics.example", True), (RECRUITER, True),
                              ("someone@gmail.com", False), ("bot@greenhouse.io", False), ("x@globex.example", False)):
        new = interview(NOW + timedelta(days=3), key="new", organizer=organizer, created=NOW + timedelta(hours=2))
        cases = track([new], now=later, cases=stored)
        assert (cases["old"].rebooked_key == "new") is linked, organizer
        assert (cases["old"].phase is Phase.REBOOKED) is linked
    # an invitation created before the miss is not an answer to it
    before = interview(NOW + timedelta(days=3), key="new", organizer="priya@acme-robotics.example",
                       created=start - timedelta(days=2))
    assert track([before], now=later, cases=stored)["old"].rebooked_key is None
    # nor one merely first seen together with the old one (a fresh state file)
    fresh = interview(NOW + timedelta(days=3), key="new", organizer="priya@acme-robotics.example")
    both = [interview(start, key="old"), meeting(start - timedelta(minutes=30), key="m", minutes=120), fresh]
    assert track(both)["old"].rebooked_key is None


def test_cases_close_on_evidence_only() -> None:
    start = NOW - timedelta(hours=5)
    stored = tuple(missed_case(start, NOW).values())
    made = NOW + timedelta(minutes=1)
    window = (NOW + timedelta(days=9), NOW + timedelta(days=40))
    apology = PriorDraft("old", ActionKind.MISSED, DraftState.SENT, made, start, RECRUITER)
    follow = PriorDraft("old", ActionKind.FOLLOW_UP, DraftState.SENT, made + timedelta(hours=20), start, RECRUITER,
                        updated=made + timedelta(hours=21))
    sent_now = track([], now=made + timedelta(days=2), cases=stored, prior=(apology, follow), window=window)
    assert sent_now["old"].phase is Phase.FOLLOWED_UP
    week = made + timedelta(hours=21, days=7)
    closed = track([], now=week, cases=stored, prior=(apology, follow), window=window)["old"]
    assert closed.phase is Phase.CLOSED and "7 days ago" in closed.close_reason
    deleted = PriorDraft("old", ActionKind.MISSED, DraftState.DELETED, made, start, RECRUITER)
    assert track([], now=made + timedelta(days=1), cases=stored, prior=(deleted,), window=window)[
        "old"].close_reason == "you deleted the last draft"
    # a plain interview that took place closes after the look-back; a cancelled one at once
    plain = track([interview(NOW + timedelta(hours=2), key="p")])
    assert track([], now=NOW + timedelta(days=5), cases=tuple(plain.values()))["p"].phase is Phase.SCHEDULED
    assert track([], now=NOW + timedelta(days=15), cases=tuple(plain.values()))["p"].phase is Phase.CLOSED
    gone = track([], now=NOW + timedelta(hours=1), cases=tuple(plain.values()),
                 window=(NOW - timedelta(days=1), NOW + timedelta(days=30)))["p"]
    assert gone.phase is Phase.CLOSED and "cancelled or removed" in gone.close_reason


def test_the_plan_announces_its_wake_ups() -> None:
    soon = interview(NOW + timedelta(hours=3), key="soon")
    start = NOW - timedelta(hours=1)
    events = [soon, interview(start, key="old"), meeting(start - timedelta(minutes=30), key="m", minutes=120)]
    labels = classified(events, LONDON)
    risks = detect(events, labels, LONDON, NOW)
    result = plan_result(events, labels, risks, LONDON, NOW, PlanContext(missed_at={"old": NOW - timedelta(minutes=30)}))
    wakes = {(w.occurrence_key, w.what): w.when for w in result.wakeups}
    assert wakes[("soon", "missed check")] == NOW + timedelta(hours=3, minutes=10)
    assert wakes[("old", "follow-up")] == NOW - timedelta(minutes=30) + timedelta(hours=20)
    assert ("old", "missed check") not in wakes  # in the past


def test_slots_offered_in_a_sent_draft_are_held_for_their_case() -> None:
    thursday = at("2026-11-26 10:00")
    a = interview(thursday, key="a")
    b = interview(thursday + timedelta(hours=4), "Phone screen - Globex", key="b", organizer="sam@globex.example")
    events = [a, b, meeting(thursday, key="ma"), meeting(thursday + timedelta(hours=4), key="mb")]
    labels = classified(events, LONDON)
    risks = detect(events, labels, LONDON, NOW)
    first = plan_result(events, labels, risks, LONDON, NOW)
    offered = {x.occurrence_key: x.slots for x in first.actions}
    # a's request was sent: b's next plan may not take a's times, even though a is no longer planned
    sent = PriorDraft("a", ActionKind.RESCHEDULE, DraftState.SENT, NOW, thursday, RECRUITER, slots=offered["a"])
    later = plan_result(events, labels, risks, LONDON, NOW + timedelta(hours=1), PlanContext(prior=(sent,)))
    (again,) = [x for x in later.actions if x.occurrence_key == "b"]
    assert not set(again.slots) & set(offered["a"])
    # once a is rebooked (moved to one of its times), its times are free again
    moved = interview(offered["a"][0].start, key="a")
    events2 = [moved, b, meeting(thursday, key="ma"), meeting(thursday + timedelta(hours=4), key="mb")]
    labels2 = classified(events2, LONDON)
    risks2 = detect(events2, labels2, LONDON, NOW)
    rebooked = plan_result(events2, labels2, risks2, LONDON, NOW + timedelta(hours=1), PlanContext(prior=(sent,)))
    assert rebooked.cases["a"].phase is Phase.REBOOKED
    assert [x.kind for x in rebooked.actions if x.occurrence_key == "a"] == [ActionKind.THANK_YOU]


def test_the_store_keeps_cases_their_history_and_a_draft_s_slots(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    cases = missed_case(NOW - timedelta(hours=1), NOW)
    slot = Slot(NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1))
    with StateStore.open(path) as store:
        assert store.save_cases(cases.values(), NOW) == 1
        assert store.save_cases(cases.values(), NOW) == 0  # no phase change, nothing logged
        store.record_intent(DraftRecord("k", "work", "old", ActionKind.MISSED, DraftState.PENDING, None, NOW, NOW,
                                        slots=(slot,)))
    with StateStore.open(path) as store:
        (case,) = store.cases(open_only=True)
        assert case == cases["old"]
        assert store.draft("k").slots == (slot,)  # type: ignore[union-attr]
        assert store.plan_context().prior[0].slots == (slot,)
        assert store.close_case("old", NOW + timedelta(hours=1), "you said it is done")
        assert store.cases(open_only=True) == [] and not store.close_case("nope", NOW, "x")
        store.reopen_case("old", NOW + timedelta(hours=2), "you said you missed it")
        assert [e.phase for e in store.case_history("old")] == [Phase.MISSED, Phase.CLOSED, Phase.SCHEDULED]


def test_a_schema_1_state_file_is_migrated_with_its_drafts(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT INTO drafts (key, account, occurrence_key, kind, state, created, updated) VALUES "
               "('k', 'work', 'iv', 'missed_interview', 'sent', '2026-11-24T09:00:00+00:00', '2026-11-24T09:00:00+00:00')")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with StateStore.open(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        (record,) = store.drafts()
        assert record.state is DraftState.SENT and record.slots == ()
        assert store.cases() == []
