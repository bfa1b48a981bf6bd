"""Detection: every risk kind, its severity and evidence, and the edge cases around time."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from core_helpers import (
    ME,
    UTC,
    all_day,
    at,
    attendee,
    classified,
    event,
    forced,
    interview,
    make_config,
    meeting,
    out_of_office,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import Config
from daemon.core.detect import MAX_OVERLAPS, detect
from daemon.core.model import Event, EventType, Response, Risk, RiskKind, Severity, ShowAs

NOW = at("2026-11-24 09:00")  # Tuesday; London is on UTC in November
LONDON = make_config()
TOMORROW = at("2026-11-25 14:00")
SUMMARY_COUNT = re.compile(r"also (?:overlaps|falls inside) (\d+) ")


def run(events: list[Event], config: Config = LONDON, now: datetime = NOW, **kwargs: object) -> list[Risk]:
    return detect(events, classified(events, config), config, now, **kwargs)  # type: ignore[arg-type]


def kinds(risks: list[Risk], key: str | None = None) -> list[str]:
    return [r.kind.value for r in risks if key is None or r.occurrence_key == key]


# ---- overlaps -----------------------------------------------------------------------------------


def test_two_overlapping_interviews_clash_both_ways() -> None:
    a = interview(TOMORROW, "Final round - Initech", key="a", minutes=120)
    b = interview(TOMORROW + timedelta(hours=1), "Panel interview - Globex", key="b")
    risks = run([a, b])
    assert [(r.kind, r.occurrence_key, r.other_key) for r in risks] == [
        (RiskKind.INTERVIEW_CLASH, "a", "b"),
        (RiskKind.INTERVIEW_CLASH, "b", "a"),
    ]
    assert all(r.severity is Severity.CRITICAL and r.other_is_interview and r.cause == "interview_clash" for r in risks)
    assert '"Panel interview - Globex"' in risks[0].evidence and "Wed 25 Nov 15:00–16:00" in risks[0].evidence


def test_touching_events_do_not_overlap() -> None:
    iv = interview(TOMORROW, key="iv")
    before = meeting(TOMORROW - timedelta(hours=1), key="m")
    assert RiskKind.DOUBLE_BOOKED.value not in kinds(run([iv, before]))


def test_double_booked_with_a_busy_meeting() -> None:
    iv = interview(TOMORROW, key="iv")
    m = meeting(TOMORROW - timedelta(minutes=30), "Quarterly planning", key="m", minutes=90)
    (risk,) = [r for r in run([iv, m]) if r.kind is RiskKind.DOUBLE_BOOKED]
    assert risk.severity is Severity.CRITICAL and risk.other_key == "m" and not risk.other_is_interview
    assert risk.cause == "double_booking" and '"Quarterly planning"' in risk.evidence
    # the meeting itself gets no risk: it is not an interview
    assert all(r.occurrence_key == "iv" for r in run([iv, m]))


@pytest.mark.parametrize(
    "change",
    [
        {"self_response": Response.DECLINED},
        {"cancelled": True},
        {"show_as": ShowAs.FREE},
        {"show_as": ShowAs.WORKING_ELSEWHERE},
        {"event_type": EventType.WORKING_LOCATION},
    ],
)
def test_declined_cancelled_and_free_events_do_not_clash(change: dict[str, object]) -> None:
    iv = interview(TOMORROW, key="iv")
    m = meeting(TOMORROW, key="m", **change)
    assert run([iv, m]) == []


def test_tentative_meeting_is_a_lower_severity_double_booking() -> None:
    iv = interview(TOMORROW, key="iv")
    for change in ({"show_as": ShowAs.TENTATIVE}, {"self_response": Response.TENTATIVE}):
        (risk,) = run([iv, meeting(TOMORROW, key="m", **change)])
        assert risk.kind is RiskKind.DOUBLE_BOOKED and risk.severity is Severity.WARNING
        assert "tentative" in risk.evidence


def test_declined_interview_gets_no_forward_risks() -> None:
    iv = interview(TOMORROW, key="iv", self_response=Response.DECLINED)
    assert run([iv, meeting(TOMORROW, key="m")]) == []


def test_never_clashes_with_itself_or_its_duplicate() -> None:
    iv = interview(TOMORROW, key="iv")
    copy = replace(iv, account="home", source_id="other-id")  # same invitation on another calendar
    assert run([iv, copy, iv]) == []


def test_recurrence_occurrences_are_distinct() -> None:
    base = at("2026-11-25 13:30")
    occurrences = [
        meeting(base + timedelta(days=7 * i), "Team sync", key="sync", series_id="sync",
                recurrence_id=base + timedelta(days=7 * i))
        for i in range(3)
    ]
    iv = interview(base + timedelta(days=7, minutes=30), key="iv")  # overlaps only the second
    risks = run([*occurrences, iv])
    (risk,) = [r for r in risks if r.kind is RiskKind.DOUBLE_BOOKED]
    assert risk.other_key == occurrences[1].occurrence_key
    assert occurrences[1].occurrence_key.startswith("sync@")


def test_events_crossing_midnight() -> None:
    late = interview(at("2026-11-25 23:30"), key="late")
    early = meeting(at("2026-11-26 00:15"), "Night shift handover", key="m")
    (risk,) = [r for r in run([late, early], make_config(detection={"waking_hours": {"start": "00:00", "end": "23:59"}}))
               if r.kind is RiskKind.DOUBLE_BOOKED]
    assert risk.other_key == "m"


# ---- out of office ------------------------------------------------------------------------------


def test_inside_out_of_office_week() -> None:
    ooo = out_of_office(date(2026, 11, 30), 5, "Out of office - family visit", key="ooo")
    iv = interview(at("2026-12-02 10:00"), key="iv")
    (risk,) = run([ooo, iv])
    assert risk.kind is RiskKind.OUT_OF_OFFICE and risk.severity is Severity.CRITICAL
    assert risk.other_key == "ooo" and risk.cause == "out_of_office"
    assert "Mon 30 Nov – Fri 4 Dec (all day)" in risk.evidence


def test_timed_out_of_office_entry() -> None:
    ooo = event("Doctor", TOMORROW - timedelta(hours=1), minutes=180, key="ooo", show_as=ShowAs.OUT_OF_OFFICE)
    assert kinds(run([ooo, interview(TOMORROW, key="iv")])) == ["out_of_office"]


def test_all_day_busy_day_is_read_in_the_users_zone() -> None:
    tokyo = make_config("Asia/Tokyo", detection={"waking_hours": {"start": "00:00", "end": "23:59"}})
    vacation = all_day("Vacation", date(2026, 12, 1), key="vac")
    inside = interview(at("2026-12-01 23:30", "Asia/Tokyo"), key="inside")  # 14:30 UTC on 1 Dec
    outside = interview(at("2026-12-02 01:00", "Asia/Tokyo"), key="outside")  # 16:00 UTC on 1 Dec
    risks = run([vacation, inside, outside], tokyo)
    assert kinds(risks, "inside") == ["out_of_office"]
    assert kinds(risks, "outside") == []


def test_all_day_free_event_is_harmless() -> None:
    holiday = all_day("Public holiday (US)", date(2026, 11, 25), show_as=ShowAs.FREE)
    assert run([holiday, interview(TOMORROW, key="iv")]) == []


# ---- buffers and travel -------------------------------------------------------------------------


def test_tight_buffer_before_and_after() -> None:
    iv = interview(TOMORROW, key="iv")
    before = meeting(TOMORROW - timedelta(minutes=65), key="before")  # ends 5 min before
    after = meeting(TOMORROW + timedelta(minutes=65), key="after")  # starts 5 min after
    risks = run([iv, before, after])
    assert kinds(risks) == ["tight_buffer", "tight_buffer"]
    assert {r.other_key for r in risks} == {"before", "after"}
    assert all(r.severity is Severity.WARNING and r.cause == "buffer" for r in risks)
    assert any("only 5 min before it" in r.evidence for r in risks)


def test_enough_gap_is_fine_and_zero_buffers_disable_the_check() -> None:
    iv = interview(TOMORROW, key="iv")
    before = meeting(TOMORROW - timedelta(minutes=75), key="before")  # 15 min gap exactly
    assert run([iv, before]) == []
    close = meeting(TOMORROW - timedelta(minutes=61), key="close")
    no_buffers = make_config(buffers={"before_minutes": 0, "after_minutes": 0})
    assert run([iv, close], no_buffers) == []


def test_travel_between_places() -> None:
    onsite = interview(TOMORROW, "Onsite interview - Stark", key="iv", link=False,
                       location="Stark Industries, 1 Canary Wharf, London E14 5AB")
    office = meeting(TOMORROW - timedelta(minutes=80), key="office", location="Board room 2, 10 King St")
    (risk,) = run([onsite, office])
    assert risk.kind is RiskKind.TRAVEL and risk.cause == "travel" and risk.other_key == "office"
    assert risk.severity is Severity.CRITICAL  # 20 min for a 45 min journey
    roomier = meeting(TOMORROW - timedelta(minutes=95), key="office", location="Board room 2, 10 King St")
    (risk,) = run([onsite, roomier])
    assert risk.kind is RiskKind.TRAVEL and risk.severity is Severity.WARNING  # 35 of 45 min


def test_no_travel_when_same_place_or_remote() -> None:
    place = "Stark Industries, 1 Canary Wharf"
    onsite = interview(TOMORROW, "Onsite interview - Stark", key="iv", link=False, location=place)
    same = meeting(TOMORROW - timedelta(minutes=80), key="m", location=place + ", room 4")
    assert run([onsite, same]) == []
    remote = interview(TOMORROW, key="iv")  # has a link: not in person
    elsewhere = meeting(TOMORROW - timedelta(minutes=80), key="m", location="Board room 2")
    assert run([remote, elsewhere]) == []


# ---- odd hours ----------------------------------------------------------------------------------


def test_odd_hour_in_own_zone_is_a_warning() -> None:
    early = interview(at("2026-11-25 06:00"), key="iv", timezone="Europe/London")
    (risk,) = run([early])
    assert risk.kind is RiskKind.ODD_HOUR and risk.severity is Severity.WARNING and risk.cause == "odd_hour"


@pytest.mark.parametrize("zone_name", ["America/Los_Angeles", "Pacific Standard Time"])
def test_odd_hour_created_in_another_zone_is_a_timezone_mistake(zone_name: str) -> None:
    start = at("2026-11-26 19:00", "America/Los_Angeles")  # 03:00 in London
    (risk,) = run([interview(start, key="iv", timezone=zone_name)])
    assert risk.kind is RiskKind.ODD_HOUR and risk.severity is Severity.CRITICAL and risk.cause == "timezone"
    assert "03:00 GMT" in risk.evidence and "19:00 in" in risk.evidence


def test_us_dst_gap_week() -> None:
    # US clocks moved on 8 March 2026, Europe's on 29 March: New York is 4 h behind London that week.
    ny = at("2026-03-10 03:30", "America/New_York")  # 07:30 in London: fine
    assert run([interview(ny, key="iv", timezone="America/New_York")], now=at("2026-03-09 09:00")) == []
    very_early = at("2026-03-10 08:00", "America/New_York")  # 12:00 London
    user_ny = make_config("America/New_York")
    late_call = interview(at("2026-03-10 08:30", "Europe/London"), key="iv2", timezone="Europe/London")
    (risk,) = run([late_call], user_ny, now=at("2026-03-09 09:00"))  # 04:30 in New York
    assert risk.cause == "timezone" and "04:30 EDT" in risk.evidence
    assert run([interview(very_early, key="iv3", timezone="America/New_York")], user_ny,
               now=at("2026-03-09 09:00")) == []


def test_berlin_dst_fall_back_is_compared_by_instant() -> None:
    berlin = make_config("Europe/Berlin", detection={"waking_hours": {"start": "00:00", "end": "23:59"}})
    first = at("2026-10-25 02:15", "Europe/Berlin", fold=0)  # CEST, 00:15 UTC
    second = at("2026-10-25 02:15", "Europe/Berlin", fold=1)  # CET, 01:15 UTC
    iv = interview(first, key="iv", minutes=45)
    m = meeting(second, key="m", minutes=30)
    assert run([iv, m], berlin, now=at("2026-10-20 09:00")) == []
    assert first.astimezone(UTC) == at("2026-10-25 00:15") and second.astimezone(UTC) == at("2026-10-25 01:15")
    overlapping = meeting(at("2026-10-25 00:45").astimezone(second.tzinfo), key="m2", minutes=30)  # 02:45 CEST
    assert kinds(run([iv, overlapping], berlin, now=at("2026-10-20 09:00"))) == ["double_booked"]


def test_fixed_offset_zone() -> None:
    config = make_config("Etc/GMT-5")  # UTC+05:00 all year
    iv = interview(at("2026-11-25 01:00"), key="iv", timezone="UTC")  # 06:00 local, 01:00 UTC
    (risk,) = run([iv], config)
    assert risk.kind is RiskKind.ODD_HOUR and risk.severity is Severity.WARNING  # 01:00 UTC is no better


# ---- join info ----------------------------------------------------------------------------------


def test_remote_interview_without_join_info() -> None:
    bare = interview(TOMORROW, "Video interview - Wayne", key="iv", link=False)
    (risk,) = run([bare])
    assert risk.kind is RiskKind.NO_JOIN_INFO and risk.cause == "no_join_info"
    assert "29 h" in risk.evidence


@pytest.mark.parametrize(
    "fields",
    [
        {"join_urls": ("https://meet.google.com/abc-defg-hij",)},
        {"phones": ("+44 20 7946 0321",)},
        {"location": "Wayne Tower, 1007 Mountain Drive"},
        {"location": "Phone call"},
        {"description": "Dial in: +1 415 555 0100"},
        {"description": "Join the meeting: https://video.example.com/r/abc"},
    ],
)
def test_join_info_present(fields: dict[str, object]) -> None:
    assert run([interview(TOMORROW, key="iv", link=False, **fields)]) == []


def test_placeholder_location_is_no_join_info() -> None:
    assert kinds(run([interview(TOMORROW, key="iv", link=False, location="Zoom")])) == ["no_join_info"]


def test_join_info_only_close_to_the_start() -> None:
    far = interview(NOW + timedelta(hours=49), key="iv", link=False)
    assert run([far]) == []
    assert kinds(run([far], now=NOW + timedelta(hours=2))) == ["no_join_info"]


# ---- missed -------------------------------------------------------------------------------------


def test_missed_because_a_meeting_covered_the_start() -> None:
    start = NOW - timedelta(hours=1)
    iv = interview(start, "Phone screen - Hooli", key="iv", minutes=30)
    m = meeting(start - timedelta(minutes=30), key="m", minutes=90)
    (risk,) = run([iv, m])
    assert risk.kind is RiskKind.MISSED and risk.severity is Severity.CRITICAL
    assert risk.other_key == "m" and risk.cause == "double_booking"
    # before the grace period is over it is not (yet) a miss
    assert run([iv, m], now=start + timedelta(minutes=5)) == [
        r for r in run([iv, m], now=start + timedelta(minutes=5)) if r.kind is not RiskKind.MISSED
    ]
    assert RiskKind.MISSED.value not in kinds(run([iv, m], now=start + timedelta(minutes=5)))


def test_missed_inside_out_of_office() -> None:
    start = NOW - timedelta(hours=2)
    ooo = out_of_office(start.date(), key="ooo")
    (risk,) = [r for r in run([ooo, interview(start, key="iv")]) if r.kind is RiskKind.MISSED]
    assert risk.cause == "out_of_office"


def test_missed_the_later_booked_of_two_that_start_together() -> None:
    start = NOW - timedelta(hours=2)
    older = interview(start, "Interview - Older", key="old", created=at("2026-11-01 10:00"))
    newer = interview(start, "Interview - Newer", key="new", created=at("2026-11-10 10:00"))
    risks = run([newer, older])
    assert [(r.kind, r.occurrence_key) for r in risks] == [(RiskKind.MISSED, "new")]
    assert risks[0].cause == "interview_clash" and risks[0].other_is_interview


def test_user_declared_tagged_and_declined_after_start() -> None:
    start = NOW - timedelta(hours=3)
    iv = interview(start, key="iv")
    assert run([iv]) == []  # nothing says the user was not there
    (risk,) = run([iv], marked_missed={"iv"})
    assert risk.kind is RiskKind.MISSED and risk.cause == "user_declared" and "you said" in risk.evidence
    assert kinds(run([replace(iv, title="[missed] " + iv.title)])) == ["missed"]
    assert kinds(run([replace(iv, categories=("Missed",))])) == ["missed"]
    declined = replace(iv, self_response=Response.DECLINED, updated=start + timedelta(minutes=20))
    (risk,) = run([declined])
    assert "declined it after it had started" in risk.evidence
    declined_early = replace(declined, updated=start - timedelta(days=1))
    assert run([declined_early]) == []


def test_missed_cause_is_timezone_when_it_was_a_timezone_mix_up() -> None:
    start = at("2026-11-23 19:00", "America/Los_Angeles")  # 03:00 London on the 24th
    iv = interview(start, key="iv", timezone="America/Los_Angeles")
    (risk,) = run([iv], marked_missed={"iv"})
    assert risk.cause == "timezone"


def test_old_misses_are_history_and_future_ones_impossible() -> None:
    old = interview(NOW - timedelta(days=8), key="old", title="[missed] Interview")
    assert run([old]) == []
    future = interview(TOMORROW, key="future")
    assert RiskKind.MISSED.value not in kinds(run([future], marked_missed={"future"}))


def test_past_interviews_only_get_missed() -> None:
    start = NOW - timedelta(hours=5)
    iv = interview(start, key="iv", link=False)
    m = meeting(start + timedelta(minutes=30), key="m")  # overlaps, but after the start
    early = interview(at("2026-11-24 06:00"), key="early")  # odd hour, but over
    assert run([iv, m, early]) == []


def test_in_progress_interview_still_gets_forward_risks() -> None:
    start = NOW - timedelta(minutes=20)
    iv = interview(start, key="iv")
    m = meeting(start - timedelta(minutes=30), key="m", minutes=120)
    assert kinds(run([iv, m])) == ["double_booked", "missed"]


def test_ignore_kinds() -> None:
    iv = interview(TOMORROW, key="iv")
    m = meeting(TOMORROW - timedelta(minutes=65), key="m")
    config = make_config(detection={"ignore_kinds": ["tight_buffer"]})
    assert run([iv, m], config) == []


# ---- robustness ---------------------------------------------------------------------------------


def test_hostile_titles_are_shown_safely_in_evidence() -> None:
    iv = interview(TOMORROW, key="iv")
    m = meeting(TOMORROW, "\x1b[31mEvil\x00\n" + "A" * 500 + "\u202e", key="m")
    (risk,) = run([iv, m])
    assert "\x1b" not in risk.evidence and "\x00" not in risk.evidence and "\n" not in risk.evidence
    assert "\u202e" not in risk.evidence and len(risk.evidence) < 200


def test_private_event_title_is_not_shown() -> None:
    iv = interview(TOMORROW, key="iv")
    m = meeting(TOMORROW, "Therapy", key="m", is_private=True)
    (risk,) = run([iv, m])
    assert "Therapy" not in risk.evidence and "a private event" in risk.evidence


def test_malformed_event_affects_only_itself() -> None:
    iv = interview(TOMORROW, key="iv")
    backwards = meeting(TOMORROW + timedelta(minutes=10), key="bad", minutes=-30)
    other = meeting(TOMORROW, key="m")
    risks = run([iv, backwards, other])
    assert ("double_booked", "m") in [(r.kind.value, r.other_key) for r in risks]


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="now"):
        detect([], {}, LONDON, datetime(2026, 11, 24, 9, 0))  # noqa: DTZ001


def test_shuffled_input_gives_the_same_output() -> None:
    evs = [
        interview(TOMORROW, key="a"),
        interview(TOMORROW + timedelta(minutes=30), key="b"),
        meeting(TOMORROW - timedelta(minutes=65), key="m1"),
        meeting(TOMORROW + timedelta(minutes=20), key="m2"),
        out_of_office(date(2026, 11, 25), key="ooo"),
        interview(NOW - timedelta(hours=1), key="past", title="[missed] Interview"),
        interview(at("2026-11-26 02:00"), key="night", timezone="Asia/Tokyo"),
    ]
    expected = run(evs)
    assert len(expected) > 8
    for seed in range(5):
        shuffled = evs[:]
        random.Random(seed).shuffle(shuffled)
        assert run(shuffled) == expected


# ---- detection agrees with brute force ----------------------------------------------------------

BASE = at("2026-11-25 08:00")


@st.composite
def calendars(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(min_value=1, max_value=25))
    events: list[Event] = []
    for i in range(n):
        start = BASE + timedelta(minutes=15 * draw(st.integers(0, 40)))
        minutes = draw(st.sampled_from([0, 15, 30, 60, 90, 240]))
        kind = draw(st.sampled_from(["interview", "meeting", "free", "declined", "tentative", "allday", "ooo"]))
        key = f"e{i}"
        if kind == "interview":
            events.append(interview(start, key=key, minutes=minutes))
        elif kind == "allday":
            events.append(all_day("Away", start.date(), key=key))
        elif kind == "ooo":
            events.append(out_of_office(start.date(), key=key))
        else:
            change = {"free": {"show_as": ShowAs.FREE}, "declined": {"self_response": Response.DECLINED},
                      "tentative": {"show_as": ShowAs.TENTATIVE}}.get(kind, {})
            events.append(meeting(start, key=key, minutes=minutes, **change))
        if draw(st.booleans()) and events:
            events.append(replace(events[-1], account="copy"))  # a duplicate from another calendar
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars())
def test_overlaps_match_brute_force(events: list[Event]) -> None:
    config = make_config(detection={"waking_hours": {"start": "00:00", "end": "23:59"}})
    tz = config.user.zone
    interviews = {e.occurrence_key for e in events if e.title.startswith("Technical interview")}
    labels = forced(events, interviews)
    risks = detect(events, labels, config, NOW)
    found = {(r.occurrence_key, r.other_key, r.kind.value) for r in risks if r.other_key
             and r.kind in (RiskKind.INTERVIEW_CLASH, RiskKind.DOUBLE_BOOKED, RiskKind.OUT_OF_OFFICE)}
    unique = {e.occurrence_key: e for e in reversed(events)}
    expected = set()
    for a in unique.values():
        if a.occurrence_key not in interviews:
            continue
        sa, ea = a.span(tz)
        for b in unique.values():
            if b.occurrence_key == a.occurrence_key or not b.user_attends:
                continue
            sb, eb = b.span(tz)
            if not (sa < eb and sb < ea):
                continue
            if b.event_type is EventType.OUT_OF_OFFICE or (b.all_day and b.blocks_time):
                expected.add((a.occurrence_key, b.occurrence_key, "out_of_office"))
            elif b.occurrence_key in interviews:
                expected.add((a.occurrence_key, b.occurrence_key, "interview_clash"))
            elif b.blocks_time:
                expected.add((a.occurrence_key, b.occurrence_key, "double_booked"))
    # Up to MAX_OVERLAPS overlaps per interview are named; the rest are counted in summaries.
    summarised: dict[str, int] = {}
    for r in risks:
        if r.other_key is None and (m := SUMMARY_COUNT.match(r.evidence)):
            summarised[r.occurrence_key] = summarised.get(r.occurrence_key, 0) + int(m.group(1))
    assert found <= expected
    for key in interviews:
        mine = {x for x in expected if x[0] == key}
        named = {x for x in found if x[0] == key}
        assert len(named) == min(len(mine), MAX_OVERLAPS), key
        assert len(named) + summarised.get(key, 0) == len(mine), key
    assert risks == detect(list(reversed(events)), labels, config, NOW)


def test_many_events_one_day_is_still_fast_and_exact() -> None:
    evs = [meeting(BASE + timedelta(minutes=i), key=f"m{i}", minutes=5) for i in range(2000)]
    iv = interview(BASE + timedelta(minutes=100), key="iv", minutes=30)
    risks = run([*evs, iv])
    doubles = [r for r in risks if r.kind is RiskKind.DOUBLE_BOOKED and r.other_key]
    assert [r.other_key for r in doubles] == [f"m{i}" for i in range(96, 96 + MAX_OVERLAPS)]
    (summary,) = [r for r in risks if r.kind is RiskKind.DOUBLE_BOOKED and not r.other_key]
    assert summary.other_key is None and SUMMARY_COUNT.match(summary.evidence).group(1) == str(34 - MAX_OVERLAPS)


def test_interview_helper_attends() -> None:
    iv = interview(TOMORROW)
    assert iv.user_attends and ME in iv.attendees and attendee("x@y.example").email == "x@y.example"
    assert iv.start.tzinfo is UTC or iv.start.utcoffset() == timedelta(0)


# ---- bounded output -----------------------------------------------------------------------------


def test_a_crowded_interview_reports_the_worst_overlaps_and_summarises_the_rest() -> None:
    iv = interview(TOMORROW, key="iv", minutes=60)
    other = interview(TOMORROW + timedelta(minutes=50), "Panel interview - Globex", key="other")
    busy = [meeting(TOMORROW + timedelta(minutes=i), f"Sync {i}", key=f"m{i:02}", minutes=30) for i in range(20)]
    tentative = [meeting(TOMORROW + timedelta(minutes=i), f"Maybe {i}", key=f"t{i}", minutes=30,
                         show_as=ShowAs.TENTATIVE) for i in range(3)]
    risks = [r for r in run([iv, other, *busy, *tentative]) if r.occurrence_key == "iv"]
    overlaps = [r for r in risks if r.kind in (RiskKind.INTERVIEW_CLASH, RiskKind.DOUBLE_BOOKED)]
    named = [r for r in overlaps if r.other_key]
    summaries = [r for r in overlaps if not r.other_key]
    assert len(named) == MAX_OVERLAPS
    # the other interview comes first whatever its start; then the earliest firm commitments
    assert named[0].kind is RiskKind.INTERVIEW_CLASH and named[0].other_key == "other"
    assert [r.other_key for r in named[1:]] == [f"m{i:02}" for i in range(MAX_OVERLAPS - 1)]
    assert [(r.kind, r.severity, r.evidence.split(" (")[0]) for r in summaries] == [
        (RiskKind.DOUBLE_BOOKED, Severity.CRITICAL, f"also overlaps {20 - (MAX_OVERLAPS - 1)} more events"),
        (RiskKind.DOUBLE_BOOKED, Severity.WARNING, "also overlaps 3 more tentative or focus-time events"),
    ]
    assert "Sync" not in " ".join(r.evidence for r in summaries)  # a count and a span, not the titles


def test_risks_per_interview_stay_bounded_however_dense_the_calendar() -> None:
    ivs = [interview(TOMORROW + timedelta(minutes=5 * i), key=f"iv{i:03}", minutes=240) for i in range(40)]
    busy = [meeting(TOMORROW + timedelta(minutes=i), key=f"m{i:03}", minutes=120) for i in range(200)]
    risks = run([*ivs, *busy])
    per_interview: dict[str, int] = {}
    for r in risks:
        if r.kind in (RiskKind.INTERVIEW_CLASH, RiskKind.DOUBLE_BOOKED, RiskKind.OUT_OF_OFFICE):
            per_interview[r.occurrence_key] = per_interview.get(r.occurrence_key, 0) + 1
    assert len(per_interview) == 40
    assert max(per_interview.values()) <= MAX_OVERLAPS + 3  # the named ones plus one summary per kind
