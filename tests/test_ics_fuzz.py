"""Bounded fuzz of the ics parser: whatever the file holds, a poll ends with events or a plain error.

Two generators: raw bytes around calendar fragments, and structured calendars whose properties take
hostile values (broken dates, unknown zones, garbage and runaway RRULEs, control characters, folded
lines, unbalanced BEGIN/END). Every case goes through the real ``IcsSource.fetch`` on a file.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import parse_config
from providers import registry
from providers.base import FetchResult, ProviderError, Window

UTC = timezone.utc
WINDOW = Window(datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
RAW_EXAMPLES = 150
STRUCTURED_EXAMPLES = 150
_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large]


def poll(data: bytes) -> FetchResult | ProviderError:
    """One poll of a calendar file holding ``data``: its result, or the plain error it raised."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calendar.ics"
        path.write_bytes(data)
        config = parse_config(
            "user: {name: Sam, email: sam@example.com, timezone: Europe/London}\n"
            f"accounts:\n  - name: main\n    calendar: {json.dumps({'type': 'ics', 'path': str(path)})}\n"
            "    drafts: {type: folder, path: drafts}\n",
            Path(tmp) / "config.yaml",
        )
        account = config.accounts[0]
        source = registry.open_calendar(account, registry.context(account, config))
        try:
            return source.fetch(WINDOW, None)
        except ProviderError as exc:
            return exc


def check(result: FetchResult | ProviderError) -> None:
    if isinstance(result, ProviderError):
        assert str(result) and "Traceback" not in str(result)
        return
    assert result.complete and len(result.problems) <= 51
    for event in result.events:
        for value in (event.start, event.end):
            assert isinstance(value, (date, datetime))
            if isinstance(value, datetime):
                assert value.utcoffset() is not None
        start, end = event.span(UTC)
        assert end >= start
        assert start < WINDOW.end + timedelta(days=2) and end > WINDOW.start - timedelta(days=2)


FRAGMENTS = [b"BEGIN:VCALENDAR\r\n", b"END:VCALENDAR\r\n", b"BEGIN:VEVENT\r\n", b"END:VEVENT\r\n",
             b"DTSTART:20261201T090000Z\r\n", b"RRULE:FREQ=SECONDLY\r\n", b"UID:x\r\n", b" folded\r\n",
             b"BEGIN:VTIMEZONE\r\n", b"TZID:Nowhere/City\r\n", b"\xef\xbb\xbf", b"\x00", b"\r\n", b":;,\\"]


@settings(max_examples=RAW_EXAMPLES, deadline=None, suppress_health_check=_CHECKS)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=40)), max_size=30))
def test_raw_bytes_never_crash_the_parser(parts: list[bytes]) -> None:
    check(poll(b"".join(parts)))


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_WHEN = st.one_of(
    st.sampled_from(["20261201T090000Z", "20261201T090000", "20261201", "20261301T090000Z", "2026-12-01",
                     "20261201T250000Z", "", "99991231T235959Z", "00010101T000000Z", "20261231T233000Z"]),
    st.builds(lambda d: (datetime(2026, 11, 25, tzinfo=UTC) + timedelta(minutes=d)).strftime("%Y%m%dT%H%M%SZ"),
              st.integers(-20000, 60000)),
)
_RULE = st.one_of(
    st.sampled_from(["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=SECONDLY", "FREQ=MINUTELY;INTERVAL=0",
                     "FREQ=HOURLY;COUNT=1000000", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=MONTHLY;BYSETPOS=-1",
                     "FREQ=DAILY;UNTIL=20261205", "FREQ=DAILY;UNTIL=garbage", "FREQ=NEVER", "COUNT=3", ";;;",
                     "FREQ=DAILY;COUNT=-1", "FREQ=WEEKLY;INTERVAL=abc"]),
    _TEXT,
)
_PROP = st.one_of(
    st.tuples(st.just("DTSTART"), st.sampled_from(["", ";TZID=Europe/Berlin", ";TZID=Nowhere/City",
                                                   ";VALUE=DATE", ";TZID=W. Europe Standard Time"]), _WHEN),
    st.tuples(st.just("DTEND"), st.just(""), _WHEN),
    st.tuples(st.just("DURATION"), st.just(""), st.sampled_from(["PT1H", "-PT1H", "P10000W", "PT", "garbage"])),
    st.tuples(st.just("RRULE"), st.just(""), _RULE),
    st.tuples(st.sampled_from(["RDATE", "EXDATE", "RECURRENCE-ID"]), st.sampled_from(["", ";RANGE=THISANDFUTURE"]),
              _WHEN),
    st.tuples(st.sampled_from(["SUMMARY", "DESCRIPTION", "LOCATION", "STATUS", "TRANSP", "CLASS", "UID",
                               "X-MICROSOFT-CDO-BUSYSTATUS", "CATEGORIES", "URL"]), st.just(""), _TEXT),
    st.tuples(st.sampled_from(["ORGANIZER", "ATTENDEE"]),
              st.sampled_from(["", ";CN=Jordan", ';CN="A, B"', ";PARTSTAT=DECLINED", ";CUTYPE=ROOM"]),
              st.sampled_from(["mailto:jordan@acme.example", "mailto:a@b,c@d", "mailto:%00@x", "jordan", ""])),
)


@st.composite
def calendars(draw: st.DrawFn) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//fuzz//EN"]
    if draw(st.booleans()):
        lines.append(f"X-WR-TIMEZONE:{draw(st.sampled_from(['Europe/London', 'Nowhere/City', '']))}")
    for index in range(draw(st.integers(0, 6))):
        lines.append("BEGIN:VEVENT")
        if draw(st.integers(0, 5)):
            lines.append(f"UID:e{index % 3}")
        for name, params, value in draw(st.lists(_PROP, max_size=8)):
            lines.append(f"{name}{params}:{value}")
        if draw(st.integers(0, 8)):
            lines.append("END:VEVENT")
    if draw(st.integers(0, 8)):
        lines.append("END:VCALENDAR")
    text = "\r\n".join(lines) + "\r\n"
    if draw(st.booleans()):  # fold at random places, as long lines are folded
        width = draw(st.integers(2, 75))
        text = "\r\n ".join(text[i:i + width] for i in range(0, len(text), width))
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=STRUCTURED_EXAMPLES, deadline=None, suppress_health_check=_CHECKS)
@given(calendars())
def test_hostile_calendars_end_in_events_or_a_plain_error(data: bytes) -> None:
    check(poll(data))
