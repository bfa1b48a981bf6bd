"""Skipping one-off events outside the window before parsing changes no result, only the cost."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import parse_config
from providers import ics_window, registry
from providers.base import Window
from providers.ics import IcsSource
from providers.ics_window import certainly_outside, drop_outside

DATA = Path(__file__).parent / "data"
UTC = timezone.utc
WINDOW = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 12, 24, tzinfo=UTC))
FIRST, LAST = WINDOW.start.date() - ics_window.MARGIN, WINDOW.end.date() + ics_window.MARGIN


def source(path: Path, tz: str = "Europe/Berlin") -> IcsSource:
    text = f"""
user: {{name: Sam Rivera, email: sam.rivera@example.com, timezone: {tz}}}
accounts:
  - name: main
    calendar: {json.dumps({"type": "ics", "path": str(path)})}
    drafts: {{type: folder, path: drafts}}
"""
    config = parse_config(text, Path("/tmp/salvage-test/config.yaml"))
    return IcsSource(config.accounts[0].calendar, registry.context(config.accounts[0], config))  # type: ignore[arg-type]


def both_ways(path: Path, window: Window, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """The fetch result parsing everything, and the one with the pre-pass forced on."""
    monkeypatch.setattr(ics_window, "MIN_BYTES", 1 << 40)
    whole = source(path).fetch(window, None)
    monkeypatch.setattr(ics_window, "MIN_BYTES", 0)
    skipped = source(path).fetch(window, None)
    return (whole.events, whole.problems), (skipped.events, skipped.problems)


def vevent(*lines: str) -> bytes:
    return ("BEGIN:VEVENT\r\nUID:x@example\r\nDTSTAMP:20260101T000000Z\r\n" + "\r\n".join(lines)
            + "\r\nEND:VEVENT\r\n").encode()


@pytest.mark.parametrize("lines, outside", [
    (("DTSTART:20240105T100000Z", "DTEND:20240105T110000Z"), True),  # long past
    (("DTSTART;TZID=Europe/Berlin:20270301T100000", "DTEND;TZID=Europe/Berlin:20270301T110000"), True),
    (("DTSTART;VALUE=DATE:20240105",), True),  # all-day, no end: one day
    (("DTSTART:20261201T100000Z", "DTEND:20261201T110000Z"), False),  # inside
    (("DTSTART:20261121T230000Z", "DTEND:20261122T010000Z"), False),  # within the margin
    (("DTSTART:20200101T000000Z", "DTEND:20300101T000000Z"), False),  # spans the window
    (("DTSTART:20240105T100000Z", "DURATION:P1000W"), False),  # a duration: left to the parser
    (("DTSTART:20240105T100000Z", "RRULE:FREQ=WEEKLY"), False),  # a series reaching the window
    (("DTSTART:20240105T100000Z", "rrule:FREQ=DAILY"), False),  # names are case-insensitive
    (("DTSTART:20240105T100000Z", "RECURRENCE-ID:20261201T100000Z"), False),  # an override
    (("DTSTART:20240105T100000Z", "RDATE:20261201T100000Z"), False),
    (("DTSTART;TZID=\"A very long\r\n  zone name\":20240105T100000", "DTEND:20240105T110000Z"), True),  # folded
    (("DTSTART:garbage", "DTEND:20240105T110000Z"), False),  # unreadable: the parser decides
    (("DTSTART:20240231T100000Z",), False),  # no such day
    (("DTEND:20240105T110000Z",), False),  # no start
])
def test_what_is_certainly_outside(lines: tuple[str, ...], outside: bool) -> None:
    assert certainly_outside(vevent(*lines), FIRST, LAST) is outside


def test_only_whole_certain_blocks_are_dropped_and_the_rest_passes_byte_for_byte() -> None:
    head = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:X\r\nEND:VTIMEZONE\r\n"
    old = vevent("DTSTART:20240105T100000Z", "DTEND:20240105T110000Z")
    now = vevent("DTSTART:20261201T100000Z", "DTEND:20261201T110000Z")
    # an END line in lower case: the block runs on into the next; both are kept
    odd = vevent("DTSTART:20240105T100000Z", "DTEND:20240105T110000Z").replace(b"END:VEVENT", b"end:vevent")
    data = head + old + now + odd + old + b"END:VCALENDAR\r\n"
    reduced, dropped = drop_outside(data, WINDOW, min_bytes=0)
    assert dropped == 1
    assert reduced == head + now + odd + old + b"END:VCALENDAR\r\n"
    assert drop_outside(data, WINDOW) == (data, 0)  # a small file is parsed whole


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.rglob("*.ics") if p.name != "not_calendar.ics"))
def test_every_fixture_reads_the_same(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = next(DATA.rglob(name))
    for window in (WINDOW, Window(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 30, tzinfo=UTC))):
        whole, skipped = both_ways(path, window, monkeypatch)
        assert skipped[0] == whole[0]


def _stamp(day: date, hour: int, form: str) -> str:
    if form == "date":
        return f";VALUE=DATE:{day:%Y%m%d}"
    if form == "tzid":
        return f";TZID=America/New_York:{day:%Y%m%d}T{hour:02}0000"
    if form == "floating":
        return f":{day:%Y%m%d}T{hour:02}0000"
    return f":{day:%Y%m%d}T{hour:02}0000Z"


@st.composite
def calendars(draw: st.DrawFn) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    for i in range(draw(st.integers(1, 25))):
        day = WINDOW.start.date() + timedelta(days=draw(st.integers(-40, 70)))
        hour = draw(st.integers(0, 23))
        form = draw(st.sampled_from(["utc", "tzid", "date", "floating"]))
        lines += ["BEGIN:VEVENT", f"UID:e{i}@test", "DTSTAMP:20260101T000000Z", f"SUMMARY:Event {i}",
                  f"DTSTART{_stamp(day, hour, form)}"]
        ending = draw(st.sampled_from(["end", "none", "duration"]))
        if ending == "end":
            length = draw(st.integers(0, 30)) if form == "date" else 0
            end_day = day + timedelta(days=length or (1 if form == "date" else draw(st.integers(0, 3))))
            lines.append(f"DTEND{_stamp(end_day, min(23, hour + 1), form)}")
        elif ending == "duration":
            lines.append(f"DURATION:P{draw(st.integers(1, 20))}D")
        if draw(st.integers(0, 4)) == 0:
            lines.append("RRULE:FREQ=WEEKLY;COUNT=12")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=calendars())
def test_generated_calendars_read_the_same(data: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "generated.ics"
    path.write_bytes(data)
    whole, skipped = both_ways(path, WINDOW, monkeypatch)
    assert skipped == whole
