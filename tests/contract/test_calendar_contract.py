"""What every calendar source promises (providers.base.CalendarSource), run over every provider."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from harnesses import NOW, ORGANIZER, soon

from daemon.core.model import Event
from providers.base import CalendarSource, Capabilities, FetchResult, Window

WINDOW = Window(NOW - timedelta(days=1), NOW + timedelta(days=30))


def apply(known: dict[str, Event], result: FetchResult) -> dict[str, Event]:
    """What a caller holds after a result: the rule the engine's state store follows."""
    if result.unchanged:
        return dict(known)
    if result.complete:
        return {e.source_id: e for e in result.events}
    held = {k: v for k, v in known.items() if k not in set(result.removed)}
    held.update((e.source_id, e) for e in result.events)
    return held


def titles(known: dict[str, Event]) -> list[str]:
    return sorted(e.title for e in known.values())


def test_it_is_a_calendar_source_and_says_whether_it_is_incremental(calendar: Any) -> None:
    source = calendar.source()
    assert isinstance(source, CalendarSource)
    assert isinstance(source.capabilities, Capabilities) and isinstance(source.capabilities.incremental, bool)


def test_the_first_fetch_is_complete_aware_and_keeps_all_day_events_apart(calendar: Any) -> None:
    calendar.add("Technical interview", soon(2), soon(2) + timedelta(hours=1))
    calendar.add("Phone screen", soon(3, 9), soon(3, 9) + timedelta(minutes=30))
    day = (NOW + timedelta(days=5)).date()
    calendar.add("Offsite", day, day + timedelta(days=1))
    result = calendar.source().fetch(WINDOW, None)
    assert result.complete and not result.unchanged and result.removed == ()
    assert sorted(e.title for e in result.events) == ["Offsite", "Phone screen", "Technical interview"]
    assert len({e.source_id for e in result.events}) == 3
    for event in result.events:
        assert event.account and event.source_id
        if event.title == "Offsite":
            assert type(event.start) is date and type(event.end) is date
        else:
            assert event.start.utcoffset() is not None and event.end.utcoffset() is not None  # type: ignore[union-attr]
        assert event.organizer is not None and event.organizer.email == ORGANIZER
    interview = next(e for e in result.events if e.title == "Technical interview")
    assert interview.start == soon(2) and interview.end == soon(2) + timedelta(hours=1)


def test_events_outside_the_window_are_left_out(calendar: Any) -> None:
    calendar.add("Inside", soon(1), soon(1) + timedelta(hours=1))
    calendar.add("Long ago", NOW - timedelta(days=20), NOW - timedelta(days=20) + timedelta(hours=1))
    calendar.add("Far ahead", NOW + timedelta(days=90), NOW + timedelta(days=90, hours=1))
    result = calendar.source().fetch(WINDOW, None)
    assert [e.title for e in result.events] == ["Inside"]


def test_changes_since_the_cursor_reach_the_caller(calendar: Any) -> None:
    kept = calendar.add("Kept", soon(1), soon(1) + timedelta(hours=1))
    renamed = calendar.add("Old title", soon(2), soon(2) + timedelta(hours=1))
    gone = calendar.add("Cancelled", soon(3), soon(3) + timedelta(hours=1))
    source = calendar.source()
    first = source.fetch(WINDOW, None)
    held = apply({}, first)
    assert titles(held) == ["Cancelled", "Kept", "Old title"]
    calendar.retitle(renamed, "New title")
    calendar.remove(gone)
    calendar.add("Added", soon(4), soon(4) + timedelta(hours=1))
    second = source.fetch(WINDOW, first.cursor)
    if not source.capabilities.incremental:
        assert second.complete or second.unchanged  # only an incremental source may answer a delta
    held = apply(held, second)
    assert titles(held) == ["Added", "Kept", "New title"]
    assert kept  # the handle stays valid throughout


def test_nothing_changed_leaves_the_caller_as_it_was(calendar: Any) -> None:
    calendar.add("Technical interview", soon(2), soon(2) + timedelta(hours=1))
    source = calendar.source()
    first = source.fetch(WINDOW, None)
    held = apply({}, first)
    second = source.fetch(WINDOW, first.cursor)
    assert apply(held, second).keys() == held.keys()
    assert not second.removed


def test_a_saved_cursor_carries_over_to_a_new_source_object(calendar: Any) -> None:
    calendar.add("Technical interview", soon(2), soon(2) + timedelta(hours=1))
    first = calendar.source().fetch(WINDOW, None)
    held = apply({}, first)
    calendar.add("Phone screen", soon(3), soon(3) + timedelta(hours=1))
    second = calendar.source().fetch(WINDOW, first.cursor)  # as after a restart
    assert titles(apply(held, second)) == ["Phone screen", "Technical interview"]


def test_an_unreadable_cursor_means_a_full_fetch_not_an_error(calendar: Any) -> None:
    calendar.add("Technical interview", soon(2), soon(2) + timedelta(hours=1))
    result = calendar.source().fetch(WINDOW, "{not a cursor")
    assert result.complete and [e.title for e in result.events] == ["Technical interview"]
