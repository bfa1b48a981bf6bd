from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.core.model import (
    ActionKind,
    DraftState,
    Event,
    EventType,
    InvitationFacts,
    Response,
    ShowAs,
    person,
)
from daemon.engine.codec import event_from_json, event_to_json
from daemon.engine.state import MIGRATIONS, DraftRecord, StateError, StateStore
from providers.base import DraftRef, FetchResult

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def event(source_id: str, start: datetime, minutes: int = 60, **kw: object) -> Event:
    return Event(account="a", source_id=source_id, title=source_id, start=start,
                 end=start + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def test_event_json_round_trip_keeps_everything() -> None:
    rich = Event(
        account="a", source_id="x@20261124T090000Z", title="Interview ✓", start=datetime(2026, 11, 24, 10, tzinfo=BERLIN),
        end=datetime(2026, 11, 24, 11, tzinfo=BERLIN), timezone="Europe/Berlin", description="d",
        organizer=person("HR@Example.com", "H R", Response.ORGANIZER),
        attendees=(person("me@x.y", "Me", Response.TENTATIVE, is_self=True), person("room@x.y", is_resource=True)),
        self_response=Response.TENTATIVE, show_as=ShowAs.OUT_OF_OFFICE, event_type=EventType.OUT_OF_OFFICE,
        join_urls=("https://zoom.us/j/1",), phones=("+1 555 0100",), ical_uid="x", series_id="x",
        recurrence_id=datetime(2026, 11, 24, 8, tzinfo=UTC), created=NOW, updated=NOW, categories=("c",),
        thread_hints=(("message_id", "<m@x>"),),
    )
    back = event_from_json(event_to_json(rich))
    assert back == rich
    assert back.start.tzinfo == BERLIN  # type: ignore[union-attr]
    allday = Event(account="a", source_id="d", title="off", start=date(2026, 11, 30), end=date(2026, 12, 5))
    assert event_from_json(event_to_json(allday)) == allday


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Event(account="a", source_id="n", title="n", start=datetime(2026, 1, 1, 9), end=datetime(2026, 1, 1, 10))


def test_full_then_delta_then_unchanged(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "s.sqlite3")
    a, b = event("a", NOW), event("b", NOW + timedelta(hours=2))
    store.apply_fetch("acc", FetchResult(events=(a, b), cursor="c1"), NOW)
    assert {e.source_id for e in store.events()} == {"a", "b"}
    assert store.cursor("acc") == "c1"
    moved = event("b", NOW + timedelta(hours=3))
    store.apply_fetch("acc", FetchResult(events=(moved,), removed=("a",), complete=False, cursor="c2"), NOW)
    assert [(e.source_id, e.start) for e in store.events()] == [("b", moved.start)]
    store.apply_fetch("acc", FetchResult(unchanged=True, cursor="c2"), NOW)
    assert len(store.events()) == 1
    # window filtering
    assert store.events(start=NOW + timedelta(hours=5)) == []
    store.close()


def test_drafts_lifecycle_and_plan_context(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "s.sqlite3")
    record = DraftRecord(key="k1", account="acc", occurrence_key="ev1", kind=ActionKind.RESCHEDULE,
                         state=DraftState.PENDING, ref=None, created=NOW, updated=NOW, event_start=NOW,
                         organizer_email="hr@x.y")
    store.record_intent(record)
    assert store.draft("k1").state is DraftState.PENDING  # type: ignore[union-attr]
    ref = DraftRef(id="file.eml", fingerprint="abc", created=NOW, extra={"message_id": "<m@x>"})
    store.update_draft("k1", DraftState.UNTOUCHED, NOW, ref=ref)
    saved = store.draft("k1")
    assert saved is not None and saved.ref == ref and saved.state is DraftState.UNTOUCHED
    store.mark_missed("ev2", NOW, "illness")
    context = store.plan_context()
    assert context.prior[0].organizer_email == "hr@x.y"
    assert context.marked_missed == frozenset({"ev2"})
    assert context.reasons == {"ev2": "illness"}
    store.close()


def test_state_survives_reopen_and_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with StateStore.open(path) as store:
        store.record_failure("acc", NOW, "boom", needs_auth=True)
    with StateStore.open(path) as store:
        status = store.account_status("acc")
        assert status is not None and status.needs_auth and status.error == "boom"
        assert store.schema_version == len(MIGRATIONS)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StateError, match="newer Salvage"):
        StateStore.open(path)


def test_record_failure_reports_first_failure_only() -> None:
    store = StateStore.open(":memory:")
    assert store.record_failure("acc", NOW, "down") is True
    assert store.record_failure("acc", NOW, "down") is False
    store.apply_fetch("acc", FetchResult(), NOW)
    status = store.account_status("acc")
    assert status is not None and status.error is None and status.failures == 0
    assert store.record_failure("acc", NOW, "down again") is True


def test_wal_mode(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "s.sqlite3") as store:
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_invitation_facts_stay_with_the_same_version_of_an_event(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.sqlite3")
    now = datetime(2026, 11, 24, 9, tzinfo=timezone.utc)
    event = Event(account="a", source_id="s1", title="Interview", start=now, end=now)
    store.apply_fetch("a", FetchResult(events=(event,), complete=True, cursor="c1"), now)
    facts = InvitationFacts(subject="Invitation", phones=("+1 646 555 0142",))
    store.set_invitation("a", "s1", facts)
    assert store.events(["a"])[0].invitation == facts
    store.apply_fetch("a", FetchResult(events=(event,), complete=True, cursor="c2"), now)  # re-read, unchanged
    assert store.events(["a"])[0].invitation == facts
    moved = replace(event, start=now.replace(hour=10), end=now.replace(hour=10))
    store.apply_fetch("a", FetchResult(events=(moved,), complete=True, cursor="c3"), now)  # changed: read again
    assert store.events(["a"])[0].invitation is None
    store.set_invitation("a", "gone", facts)  # an event no longer stored: nothing to do
