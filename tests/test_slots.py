"""Slot finding: working hours, notice, buffers, spread, DST weeks, fixed offsets, independent checks."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from core_helpers import (
    UTC,
    all_day,
    assert_slots_free,
    at,
    interview,
    make_config,
    meeting,
    out_of_office,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import Config
from daemon.core.model import Event, ShowAs, Slot
from daemon.core.slots import find_slots, local_instant

NOW = at("2026-11-24 09:00")  # Tuesday
HOUR = timedelta(hours=1)
LONDON = make_config()


def local(slots: list[Slot], tz: str = "Europe/London") -> list[str]:
    return [s.start.astimezone(ZoneInfo(tz)).strftime("%a %d %H:%M") for s in slots]


def check(events: list[Event], config: Config, now: datetime, duration: timedelta, **kwargs: object) -> list[Slot]:
    slots = find_slots(events, config, now, duration, **kwargs)  # type: ignore[arg-type]
    assert_slots_free(slots, events, config, now, duration, kwargs.get("ignore", ()))  # type: ignore[arg-type]
    return slots


def test_three_slots_one_per_day_after_the_notice() -> None:
    slots = check([], LONDON, NOW, HOUR)
    assert local(slots) == ["Wed 25 09:00", "Thu 26 09:00", "Fri 27 09:00"]
    assert all(s.start.tzinfo == LONDON.user.zone for s in slots)


def test_busy_time_and_buffers_are_kept_clear() -> None:
    busy = [
        meeting(at("2026-11-25 09:00"), key="a", minutes=150),  # Wed 09:00–11:30
        meeting(at("2026-11-26 10:00"), key="b", minutes=30),  # Thu 10:00–10:30
    ]
    slots = check(busy, LONDON, NOW, HOUR)
    # Wed: 11:30 + 15 min buffer -> 12:00; Thu: 09:00 would end 10:00, 10 min short of the buffer
    assert local(slots) == ["Wed 25 12:00", "Thu 26 11:00", "Fri 27 09:00"]


def test_free_declined_and_cancelled_events_do_not_block() -> None:
    harmless = [
        meeting(at("2026-11-25 09:30"), key="a", show_as=ShowAs.FREE, minutes=480),
        meeting(at("2026-11-26 09:00"), key="b", cancelled=True, minutes=480),
    ]
    assert local(check(harmless, LONDON, NOW, HOUR)) == ["Wed 25 09:00", "Thu 26 09:00", "Fri 27 09:00"]


def test_ignore_the_interview_being_moved() -> None:
    iv = interview(at("2026-11-25 09:30"), key="iv", minutes=480)
    assert local(check([iv], LONDON, NOW, HOUR))[0] == "Thu 26 09:00"
    assert local(check([iv], LONDON, NOW, HOUR, ignore={"iv"}))[0] == "Wed 25 09:00"


def test_all_day_busy_and_out_of_office_days_are_skipped() -> None:
    events = [all_day("Conference", date(2026, 11, 25)), out_of_office(date(2026, 11, 26), 2)]
    assert local(check(events, LONDON, NOW, HOUR)) == ["Mon 30 09:00", "Tue 01 09:00", "Wed 02 09:00"]


def test_no_spread_takes_the_earliest() -> None:
    config = make_config(slots={"spread": False})
    assert local(check([], config, NOW, HOUR)) == ["Wed 25 09:00", "Wed 25 10:00", "Wed 25 11:00"]


def test_spread_doubles_up_when_days_run_out() -> None:
    config = make_config(slots={"horizon_days": 3, "count": 4})  # Wed and Thu only (horizon Fri 09:00)
    slots = check([], config, NOW, HOUR)
    assert local(slots) == ["Wed 25 09:00", "Wed 25 10:00", "Thu 26 09:00", "Thu 26 10:00"]


def test_working_days_hours_step_and_count() -> None:
    config = make_config(
        working_hours={"days": ["sat", "sun"], "start": "10:15", "end": "12:00"},
        slots={"step_minutes": 45, "count": 2, "min_notice_hours": 0},
    )
    slots = check([], config, NOW, timedelta(minutes=30))
    assert local(slots) == ["Sat 28 10:30", "Sun 29 10:30"]
    assert check([], config, NOW, timedelta(hours=3)) == []  # longer than the working day
    assert len(check([], LONDON, NOW, HOUR, count=5)) == 5
    assert check([], LONDON, NOW, HOUR, count=0) == []


def test_horizon_limits_the_search() -> None:
    config = make_config(slots={"horizon_days": 1, "min_notice_hours": 0})
    slots = check([], config, at("2026-11-27 16:00"), HOUR)  # a Friday afternoon
    assert local(slots) == ["Fri 27 16:00"]


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="duration must be positive"):
        find_slots([], LONDON, NOW, timedelta(0))
    with pytest.raises(ValueError, match="now"):
        find_slots([], LONDON, datetime(2026, 11, 24, 9), HOUR)  # noqa: DTZ001


def test_prefers_hours_that_suit_the_recipient() -> None:
    la = ZoneInfo("America/Los_Angeles")
    slots = check([], LONDON, NOW, HOUR, their_zone=la)
    # London 09:00–17:30 shares only 17:00–17:30 with LA's working day: the hour closest to it is
    # 16:30–17:30 London = 08:30–09:30 PST, preferred to the earliest hour LA is awake (07:00 PST).
    assert local(slots) == ["Wed 25 16:30", "Thu 26 16:30", "Fri 27 16:30"]
    assert local(slots, "America/Los_Angeles") == ["Wed 25 08:30", "Thu 26 08:30", "Fri 27 08:30"]
    paris = check([], LONDON, NOW, HOUR, their_zone=ZoneInfo("Europe/Paris"))
    assert local(paris) == ["Wed 25 09:00", "Thu 26 09:00", "Fri 27 09:00"]  # 10:00 in Paris is fine


# ---- DST and odd zones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "now", "expected_utc"),
    [
        # Berlin springs forward on Sun 29 March 2026: 09:00 is 08:00 UTC before, 07:00 UTC after.
        ("Europe/Berlin", "2026-03-26 06:00", ["2026-03-27 08:00", "2026-03-30 07:00", "2026-03-31 07:00"]),
        # and falls back on Sun 25 October.
        ("Europe/Berlin", "2026-10-22 05:00", ["2026-10-23 07:00", "2026-10-26 08:00", "2026-10-27 08:00"]),
        # New York: 8 March and 1 November 2026.
        ("America/New_York", "2026-03-05 12:00", ["2026-03-06 14:00", "2026-03-09 13:00", "2026-03-10 13:00"]),
        ("America/New_York", "2026-10-29 12:00", ["2026-10-30 13:00", "2026-11-02 14:00", "2026-11-03 14:00"]),
    ],
)
def test_nine_oclock_is_nine_oclock_on_both_sides_of_dst(tz: str, now: str, expected_utc: list[str]) -> None:
    config = make_config(tz)
    slots = check([], config, at(now), HOUR)
    assert [s.start.astimezone(UTC) for s in slots] == [at(t) for t in expected_utc]
    assert {s.start.astimezone(ZoneInfo(tz)).time() for s in slots} == {time(9, 0)}


@pytest.mark.parametrize(
    ("tz", "day", "missing"),
    [
        ("Europe/Berlin", "2026-03-29", {"02:00", "02:30"}),  # skipped
        ("Europe/Berlin", "2026-10-25", {"02:00", "02:30"}),  # repeated
        ("America/New_York", "2026-03-08", {"02:00", "02:30"}),
        ("America/New_York", "2026-11-01", {"01:00", "01:30"}),
    ],
)
def test_skipped_and_repeated_hours_are_never_proposed(tz: str, day: str, missing: set[str]) -> None:
    config = make_config(
        tz,
        working_hours={"days": ["sun"], "start": "00:00", "end": "05:00"},
        slots={"min_notice_hours": 0, "spread": False, "count": 10, "horizon_days": 3},
    )
    when = date.fromisoformat(day)
    now = datetime.combine(when - timedelta(days=1), time(12), tzinfo=ZoneInfo(tz))
    slots = check([], config, now, timedelta(minutes=30))
    times = [s.start.astimezone(ZoneInfo(tz)).strftime("%H:%M") for s in slots]
    assert not missing & set(times)
    assert len(times) == 10 - len(missing)
    assert len({s.start.astimezone(UTC) for s in slots}) == len(slots)


def test_a_slot_spanning_the_change_keeps_its_real_length() -> None:
    config = make_config(
        "Europe/Berlin",
        working_hours={"days": ["sun"], "start": "01:00", "end": "05:00"},
        slots={"min_notice_hours": 0, "spread": False, "count": 1},
    )
    slots = check([], config, at("2026-03-28 12:00"), HOUR)
    (slot,) = slots
    assert slot.start.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") == "01:00"
    assert slot.end.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") == "03:00"  # one real hour
    assert slot.end.astimezone(UTC) - slot.start.astimezone(UTC) == HOUR


def test_local_instant() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert local_instant(date(2026, 3, 29), time(2, 30), berlin) is None
    assert local_instant(date(2026, 10, 25), time(2, 30), berlin) is None
    ok = local_instant(date(2026, 10, 25), time(3, 30), berlin)
    assert ok is not None and ok.utcoffset() == timedelta(hours=1)


def test_fixed_offset_zone() -> None:
    config = make_config("Etc/GMT-5")  # UTC+05:00
    slots = check([], config, NOW, HOUR)
    assert [s.start.astimezone(UTC).strftime("%d %H:%M") for s in slots] == ["25 09:00", "26 04:00", "27 04:00"]  # 14:00 local is the first time after the notice


def test_windows_zone_events_block_by_instant() -> None:
    # An event whose source gave a Windows zone name still carries aware instants: it blocks those.
    busy = meeting(at("2026-11-25 09:00", "Europe/Paris"), key="m", timezone="Romance Standard Time", minutes=120)
    slots = check([busy], LONDON, NOW, HOUR)
    assert local(slots)[0] == "Wed 25 10:30"  # 08:00–10:00 London, + 15 min buffer, aligned


# ---- slots are always really free ---------------------------------------------------------------

BASE = at("2026-11-25 07:00")


@st.composite
def busy_calendars(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = []
    for i in range(draw(st.integers(0, 30))):
        start = BASE + timedelta(minutes=5 * draw(st.integers(0, 14 * 24 * 12)))
        minutes = draw(st.integers(0, 600))
        if draw(st.integers(0, 9)) == 0:
            events.append(all_day("Away", start.date(), draw(st.integers(1, 3)), key=f"d{i}"))
        else:
            show = draw(st.sampled_from([ShowAs.BUSY, ShowAs.BUSY, ShowAs.TENTATIVE, ShowAs.FREE]))
            events.append(meeting(start, key=f"m{i}", minutes=minutes, show_as=show))
    return events


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    busy_calendars(),
    st.sampled_from(["Europe/London", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Etc/GMT+3"]),
    st.sampled_from([15, 30, 45, 60, 90, 180]),
    st.booleans(),
    st.integers(0, 48),
)
def test_slots_are_free_in_hours_and_on_working_days(
    events: list[Event], tz: str, minutes: int, spread: bool, notice: int
) -> None:
    config = make_config(tz, slots={"spread": spread, "min_notice_hours": notice, "count": 4})
    now = at("2026-11-24 10:07")
    slots = check(events, config, now, timedelta(minutes=minutes))
    assert slots == sorted(slots, key=lambda s: s.start)
    assert find_slots(list(reversed(events)), config, now, timedelta(minutes=minutes), count=4) == slots


# ---- the recipient's day, and travel ------------------------------------------------------------


def test_no_shared_working_hour_offers_the_least_bad_waking_hours() -> None:
    from daemon.core.slots import SlotFinder

    madrid = make_config("Europe/Madrid")
    sydney = ZoneInfo("Australia/Sydney")
    finder = SlotFinder([], madrid)
    assert not finder.hours_overlap(sydney, NOW)
    assert finder.hours_overlap(ZoneInfo("America/New_York"), NOW)
    assert finder.hours_overlap(None, NOW)
    early = at("2026-11-24 05:00")  # the 24 h notice leaves Wednesday 07:00 Madrid open
    slots = finder.find(early, HOUR, their_zone=sydney)
    assert len(slots) == 3
    for slot in slots:
        here, there = slot.start.astimezone(madrid.user.zone), slot.start.astimezone(sydney)
        end_there = slot.end.astimezone(sydney)
        waking = madrid.detection.waking_hours
        assert waking.start <= here.time() and slot.end.astimezone(madrid.user.zone).time() <= waking.end
        # never 19:00–20:00 in Sydney (Madrid's 09:00): the hours nearest Sydney's working day instead
        assert not (19 <= there.hour or there.hour < 7), there
        assert there.weekday() < 5 and end_there.weekday() < 5
    assert local(slots, "Europe/Madrid") == ["Wed 25 07:00", "Thu 26 07:00", "Fri 27 07:00"]
    assert local(slots, "Australia/Sydney") == ["Wed 25 17:00", "Thu 26 17:00", "Fri 27 17:00"]


def test_an_onsite_interview_keeps_the_travel_time_clear() -> None:
    from daemon.core.slots import SlotFinder

    config = make_config(buffers={"before_minutes": 15, "after_minutes": 10, "travel_minutes": 60})
    video = [meeting(at("2026-11-25 09:00"), "Video interview - Initech", key="v", minutes=60)]
    finder = SlotFinder(video, config)
    remote = finder.find(NOW, HOUR, count=1)
    onsite = finder.find(NOW, HOUR, count=1, travel=True)
    assert local(remote) == ["Wed 25 10:30"]  # 15 min after the call, on the half hour
    assert local(onsite) == ["Wed 25 11:00"]  # a full hour to get there
    later = SlotFinder([meeting(at("2026-11-25 12:00"), key="w", minutes=60)], config)
    ahead = Slot(at("2026-11-25 10:30"), at("2026-11-25 11:30"))  # 30 min before the next commitment
    assert later.is_free(ahead) and not later.is_free(ahead, travel=True)
    slot = Slot(at("2026-11-25 10:15"), at("2026-11-25 11:15"))
    assert finder.is_free(slot) and not finder.is_free(slot, travel=True)
    assert finder.is_free(slot, travel=True, ignore={"v"})
