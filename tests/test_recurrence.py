"""Pathological recurrence is bounded: a runaway series is skipped with a note, the rest is still read."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import parse_config
from providers import registry
from providers.base import FetchResult, Window
from providers.recurrence import Limits, Unexpandable, expand, series_cost

UTC = timezone.utc
WINDOW = Window(datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
# A hung parse must fail the test instead of hanging the suite (today's main never returns).
LIVENESS_SECONDS = 60.0

INTERVIEW = (
    "BEGIN:VEVENT\r\nUID:interview-1\r\nDTSTART:20261210T140000Z\r\nDTEND:20261210T150000Z\r\n"
    "SUMMARY:Interview: platform engineer\r\nORGANIZER;CN=Jordan:mailto:jordan@acme.example\r\nEND:VEVENT\r\n"
)


def calendar(*events: str) -> str:
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + "".join(events) + "END:VCALENDAR\r\n"


def series(uid: str, rule: str, start: str = "20261201T090000Z", end: str = "DURATION:PT30M", extra: str = "") -> str:
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{start}\r\n{end}\r\nSUMMARY:Series {uid}\r\n"
            f"RRULE:{rule}\r\n{extra}END:VEVENT\r\n")


def fetch_file(path: Path, window: Window = WINDOW) -> FetchResult:
    """Fetch ``path`` through the real ics source, failing (not hanging) if it never returns."""
    config = parse_config(
        "user: {name: Sam, email: sam@example.com, timezone: Europe/London}\n"
        f"accounts:\n  - name: main\n    calendar: {json.dumps({'type': 'ics', 'path': str(path)})}\n"
        "    drafts: {type: folder, path: drafts}\n",
        Path("/tmp/salvage-test/config.yaml"),
    )
    source = registry.open_calendar(config.accounts[0], registry.context(config.accounts[0], config))
    box: dict[str, Any] = {}

    def run() -> None:
        box["result"] = source.fetch(window, None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(LIVENESS_SECONDS)
    assert not worker.is_alive(), "the calendar's recurrence is still being expanded"
    return box["result"]  # type: ignore[no-any-return]


PATHOLOGICAL = {
    "secondly-no-end": series("s", "FREQ=SECONDLY"),
    "minutely-since-2001": series("m", "FREQ=MINUTELY", start="20010101T000000Z"),
    "interval-zero": series("z", "FREQ=DAILY;INTERVAL=0"),
    "interval-negative": series("n", "FREQ=HOURLY;INTERVAL=-3"),
    "count-a-million": series("c", "FREQ=SECONDLY;COUNT=1000000"),
    "secondly-in-disguise": series("d", "FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24)))
                                   + ";BYMINUTE=" + ",".join(map(str, range(60)))
                                   + ";BYSECOND=" + ",".join(map(str, range(60)))),
    "fifty-year-occurrences": series("y", "FREQ=DAILY", start="19800101T090000Z", end="DTEND:20300101T090000Z"),
    "five-thousand-rdates": (
        "BEGIN:VEVENT\r\nUID:r\r\nDTSTART:20261201T000000Z\r\nDURATION:PT1M\r\nSUMMARY:Series r\r\n"
        + "".join(f"RDATE:{(datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=5 * i)):%Y%m%dT%H%M%SZ}\r\n"
                  for i in range(5000))
        + "END:VEVENT\r\n"
    ),
    "no-freq": series("f", "INTERVAL=2;COUNT=3"),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_a_runaway_series_is_skipped_with_a_note_and_the_rest_is_read(tmp_path: Path, name: str) -> None:
    path = tmp_path / "calendar.ics"
    path.write_text(calendar(PATHOLOGICAL[name], INTERVIEW,
                             series("weekly", "FREQ=WEEKLY;COUNT=10", start="20261201T080000Z")))
    result = fetch_file(path)
    titles = [e.title for e in result.events]
    assert titles.count("Interview: platform engineer") == 1
    assert titles.count("Series weekly") == 5  # Dec 1, 8, 15, 22, 29
    uid = PATHOLOGICAL[name].split("UID:")[1].split("\r\n")[0]
    assert f"Series {uid}" not in titles
    notes = [p for p in result.problems if f"event {uid!r}" in p]
    assert len(notes) == 1 and notes[0].startswith("skipped"), result.problems


def test_ordinary_long_and_frequent_series_are_still_expanded(tmp_path: Path) -> None:
    path = tmp_path / "calendar.ics"
    path.write_text(calendar(
        series("daily-since-1970", "FREQ=DAILY", start="19700101T090000Z"),
        series("hourly-this-month", "FREQ=HOURLY;UNTIL=20261203T000000Z", start="20261201T000000Z"),
        series("monthly-byday", "FREQ=MONTHLY;BYDAY=1MO,3WE", start="20000103T100000Z"),
        series("count-a-million-daily", "FREQ=DAILY;COUNT=1000000", start="20261205T100000Z"),
    ))
    result = fetch_file(path)
    count = {uid: sum(1 for e in result.events if e.ical_uid == uid)
             for uid in ("daily-since-1970", "hourly-this-month", "monthly-byday", "count-a-million-daily")}
    assert count == {"daily-since-1970": 31, "hourly-this-month": 49, "monthly-byday": 2, "count-a-million-daily": 26}
    assert result.problems == ()


def _parse(text: str) -> Any:
    return icalendar.Calendar.from_ical(text)


def test_the_calendar_budgets_stop_expansion_with_one_note_per_skipped_series() -> None:
    text = calendar(*(series(f"e{i}", "FREQ=DAILY;COUNT=20", start="20261201T090000Z") for i in range(10)))
    problems: list[str] = []
    found = expand(_parse(text), date(2026, 12, 1), date(2027, 1, 1), problems,
                   limits=Limits(calendar_occurrences=50, batch_steps=1))
    assert len(found) == 40  # two series of 20 fit in 50; the third would not
    assert len(problems) == 8 and all("already has 50 occurrences" in p for p in problems)

    problems = []
    found = expand(_parse(text), date(2026, 12, 1), date(2027, 1, 1), problems,
                   limits=Limits(calendar_steps=65))
    assert len(found) == 60 and len(problems) == 7 and "budget" in problems[0]


def test_the_time_budget_skips_the_series_not_yet_expanded() -> None:
    text = calendar(*(series(f"e{i}", "FREQ=DAILY;COUNT=5", start="20261201T090000Z") for i in range(6)))
    ticks = iter(range(100))
    clock: Callable[[], float] = lambda: float(next(ticks))  # noqa: E731 - one second per reading
    problems: list[str] = []
    found = expand(_parse(text), date(2026, 12, 1), date(2027, 1, 1), problems,
                   limits=Limits(seconds=2.5, batch_steps=1), clock=clock)
    assert len(found) == 10  # two batches ran before the budget was spent
    assert len(problems) == 4 and all("took longer than 2.5s" in p for p in problems)


def test_unexpandable_rules_name_their_fault() -> None:
    component = _parse(calendar(series("z", "FREQ=DAILY;INTERVAL=0"))).walk("VEVENT")[0]
    with pytest.raises(Unexpandable, match="INTERVAL must be a positive number"):
        series_cost([component], date(2026, 12, 1), date(2027, 1, 1))


_FREQS = ["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]


@st.composite
def rules(draw: st.DrawFn) -> str:
    parts = [f"FREQ={draw(st.sampled_from(_FREQS))}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 40))}")
    end = draw(st.sampled_from(["none", "count", "until"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 3000))}")
    elif end == "until":
        until = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 24 * 90)))
        parts.append(f"UNTIL={until:%Y%m%dT%H%M%SZ}")
    for part, top in (("BYHOUR", 23), ("BYMINUTE", 59), ("BYDAY", None), ("BYMONTHDAY", 28)):
        if draw(st.integers(0, 4)) == 0:
            if top is None:
                values = draw(st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
                                       min_size=1, max_size=7, unique=True))
            else:
                values = [str(v) for v in draw(st.lists(st.integers(0 if top != 28 else 1, top), min_size=1,
                                                        max_size=6, unique=True))]
            parts.append(f"{part}={','.join(values)}")
    return ";".join(parts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=rules(), days_before=st.integers(0, 3 * 365), minutes=st.integers(1, 3 * 24 * 60))
def test_the_estimate_bounds_what_expansion_produces(rule: str, days_before: int, minutes: int) -> None:
    start = datetime(2026, 12, 1, 9, tzinfo=UTC) - timedelta(days=days_before)
    text = calendar(series("x", rule, start=f"{start:%Y%m%dT%H%M%SZ}", end=f"DURATION:PT{minutes}M"))
    component = _parse(text).walk("VEVENT")[0]
    cost = series_cost([component], date(2026, 12, 1), date(2026, 12, 8))
    problems: list[str] = []
    found = expand(_parse(text), date(2026, 12, 1), date(2026, 12, 8), problems,
                   limits=Limits(series_steps=30_000, series_occurrences=3_000))
    if cost.steps <= 30_000 and cost.occurrences <= 3_000:
        assert len(found) <= cost.occurrences
        # dateutil itself refuses some combinations (a BY list the interval never reaches): noted
        assert problems == [] or (found == [] and "cannot expand its recurrence" in problems[0])
    else:
        assert found == [] and len(problems) == 1


def test_single_events_come_before_long_series_in_the_budget() -> None:
    """The time budget cuts the most expensive series, not an interview listed after them."""
    long_series = [series(f"w{i}", "FREQ=WEEKLY;BYDAY=MO,WE", start="20180101T090000Z") for i in range(4)]
    text = calendar(*long_series, INTERVIEW)
    ticks = iter(range(100))
    problems: list[str] = []
    found = expand(_parse(text), date(2026, 12, 1), date(2027, 1, 1), problems,
                   limits=Limits(seconds=1.5, batch_steps=1), clock=lambda: float(next(ticks)))
    assert [str(o.get("UID")) for o in found][:1] == ["interview-1"]
    assert len(problems) == 4 and all("took longer" in p for p in problems)
