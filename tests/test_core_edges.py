"""Edge cases across the pure core: purity, determinism, DST and Windows zones end to end, recurrence
exceptions, the classifier's keyword prefilter and the slot finder's shared index (many clashes)."""

from __future__ import annotations

import ast
import random
import re
import time as clock
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from core_helpers import (
    RECRUITER,
    UTC,
    assert_slots_free,
    at,
    classified,
    interview,
    make_config,
    meeting,
    out_of_office,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import Config
from daemon.core import classify as classify_module
from daemon.core.classify import classify_all
from daemon.core.detect import detect
from daemon.core.model import (
    Action,
    ActionKind,
    DraftState,
    Event,
    PlanContext,
    PriorDraft,
    Response,
    RiskKind,
    Severity,
    ShowAs,
)
from daemon.core.plan import plan, plan_result
from daemon.core.slots import SlotFinder, find_slots

DAEMON = Path(__file__).resolve().parents[1] / "daemon" / "core"
# Every core module but the model, whose utc_now() is the one clock the outer layers inject from.
CORE = tuple(sorted(p.name for p in DAEMON.glob("*.py") if p.name != "model.py"))
NOW = at("2026-11-24 09:00")  # Tuesday
LONDON = make_config()
HOUR = timedelta(hours=1)


def run(events: list[Event], config: Config = LONDON, now: datetime = NOW,
        context: PlanContext | None = None) -> list[Action]:
    context = context or PlanContext()
    labels = classify_all(events, config)
    risks = detect(events, labels, config, now, marked_missed=context.marked_missed)
    return plan(events, labels, risks, config, now, context)


# ---- the core is pure ---------------------------------------------------------------------------

# Calls that read the clock, the environment or the outside world; none belongs in the core.
FORBIDDEN_CALLS = {
    "now", "utcnow", "today", "utc_now", "monotonic", "perf_counter", "time_ns", "open", "getenv", "urlopen",
    "print", "input", "system", "Popen", "sleep", "randint", "shuffle", "read_text", "write_text",
}
FORBIDDEN_MODULES = {"os", "sys", "time", "random", "socket", "subprocess", "logging", "sqlite3", "httpx", "pathlib"}


@pytest.mark.parametrize("name", CORE)
def test_core_modules_do_no_io_and_read_no_clock(name: str) -> None:
    tree = ast.parse((DAEMON / name).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not {m.split(".")[0] for m in modules} & FORBIDDEN_MODULES, (name, ast.dump(node))
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            assert called not in FORBIDDEN_CALLS, (name, node.lineno, called)


@pytest.mark.parametrize("name", CORE)
def test_core_modules_build_no_naive_datetimes(name: str) -> None:
    # datetime(...) / datetime.combine(...) / fromtimestamp(...) without a zone would be naive.
    tree = ast.parse((DAEMON / name).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        keywords = {k.arg: k.value for k in node.keywords}
        if isinstance(func, ast.Name) and func.id == "datetime":
            assert "tzinfo" in keywords or len(node.args) >= 8, (name, node.lineno)
        if isinstance(func, ast.Attribute) and func.attr == "combine":
            assert "tzinfo" in keywords or len(node.args) >= 3, (name, node.lineno)
        if isinstance(func, ast.Attribute) and func.attr in ("fromtimestamp", "utcfromtimestamp"):
            assert func.attr == "fromtimestamp" and (len(node.args) >= 2 or "tz" in keywords), (name, node.lineno)


# ---- determinism --------------------------------------------------------------------------------


def busy_week() -> list[Event]:
    day = at("2026-11-25 10:00")
    events = [
        interview(day, key="a", created=NOW - timedelta(days=3)),
        interview(day + timedelta(minutes=30), key="b", title="Phone screen - Globex", created=NOW - timedelta(days=1),
                  organizer="sam@globex.example", timezone="Eastern Standard Time"),
        meeting(day - timedelta(minutes=50), key="m1"),
        meeting(day + timedelta(days=1), key="m2"),
        interview(day + timedelta(days=1, minutes=15), key="c", link=False, phones=("+44 20 7946 0000",)),
        out_of_office(date(2026, 11, 27), key="ooo"),
        interview(at("2026-11-27 14:00"), key="d"),
        interview(NOW - timedelta(hours=2), key="past", title="[missed] Technical interview"),
        interview(at("2026-11-26 02:00"), key="night", timezone="Tokyo Standard Time"),
    ]
    # the same invitations seen again through another account's calendar
    return [*events, replace(events[0], account="home", source_id="a-copy"), replace(events[4], account="home")]


def test_plan_is_the_same_for_any_input_order_and_when_run_twice() -> None:
    events = busy_week()
    prior = (
        PriorDraft("past", ActionKind.MISSED, DraftState.UNTOUCHED, NOW - timedelta(hours=1)),
        PriorDraft("a", ActionKind.RESCHEDULE, DraftState.DELETED, NOW - timedelta(days=1)),
    )
    context = PlanContext(prior=prior)
    expected = plan_result(events, classify_all(events, LONDON),
                           detect(events, classify_all(events, LONDON), LONDON, NOW), LONDON, NOW, context)
    assert len(expected.actions) >= 4 and expected.skipped
    for seed in range(6):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        labels = classify_all(shuffled, LONDON)
        risks = detect(shuffled, labels, LONDON, NOW)
        again = plan_result(shuffled, labels, risks, LONDON, NOW, PlanContext(prior=tuple(reversed(prior))))
        assert again == expected
        assert plan_result(shuffled, labels, risks, LONDON, NOW, context) == again  # idempotent
    keys = [a.key for a in expected.actions]
    assert len(keys) == len(set(keys))


def test_duplicates_of_one_occurrence_are_classified_the_same_whatever_the_order() -> None:
    # Two calendars hold the same occurrence; one copy has the title the other lacks (e.g. a private
    # copy). Which one counts must not depend on which calendar was read first.
    full = interview(at("2026-11-25 14:00"), key="iv", account="work")
    bare = replace(full, account="home", source_id="iv-home", title="Busy", description="", join_urls=(),
                   organizer=None, attendees=())
    first = classify_all([full, bare], LONDON)
    second = classify_all([bare, full], LONDON)
    assert first == second
    labels = classify_all([bare, full], LONDON)
    risks = detect([bare, full], labels, LONDON, NOW)
    assert risks == detect([full, bare], classify_all([full, bare], LONDON), LONDON, NOW)


# ---- DST and Windows zones, end to end ----------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "clash", "busy_local", "expected_local"),
    [
        # Berlin springs forward on Sun 29 March 2026, three weeks after New York: 6 h apart, so 15:00
        # Berlin is 09:00 New York, the first hour that suits both; a meeting at 15:00 pushes Monday on.
        ("2026-03-25 08:00", "2026-03-27 10:00", ["2026-03-30 15:00"],
         ["Mon 30 16:00", "Tue 31 15:00", "Wed 01 15:00"]),
        # Berlin falls back on Sun 25 October, a week before New York: 5 h apart that week.
        ("2026-10-21 08:00", "2026-10-23 10:00", ["2026-10-26 14:00"],
         ["Mon 26 15:00", "Tue 27 14:00", "Wed 28 14:00"]),
    ],
)
def test_reschedule_across_a_dst_change_for_a_windows_zone_organizer(
    now: str, clash: str, busy_local: list[str], expected_local: list[str]
) -> None:
    config = make_config("Europe/Berlin", slots={"min_notice_hours": 72})
    berlin = ZoneInfo("Europe/Berlin")
    # the organizer's calendar is on "Eastern Standard Time" (Windows), whose DST dates differ from Europe's
    iv = interview(at(clash, "Europe/Berlin"), key="iv", timezone="Eastern Standard Time", organizer="sam@globex.example")
    events = [iv, meeting(at(clash, "Europe/Berlin"), key="m")]
    # a meeting given in UTC that is 09:00 Berlin time after the change: it blocks 09:00 local, nothing else
    for i, text in enumerate(busy_local):
        events.append(meeting(at(text, "Europe/Berlin").astimezone(UTC), key=f"b{i}", minutes=45))
    actions = run(events, config, at(now, "Europe/Berlin"))
    (action,) = actions
    assert action.kind is ActionKind.RESCHEDULE and action.recipient_timezone == "America/New_York"
    assert [s.start.astimezone(berlin).strftime("%a %d %H:%M") for s in action.slots] == expected_local
    new_york = ZoneInfo("America/New_York")
    assert all(time(9) <= s.start.astimezone(new_york).time() <= time(10) for s in action.slots)
    assert_slots_free(action.slots, events, config, at(now, "Europe/Berlin"), HOUR, ignore={"iv"})


def test_odd_hour_and_missed_for_an_event_created_in_a_windows_zone() -> None:
    # 19:00 Pacific is 03:00 in London: set up in the organizer's zone, a classic mix-up
    start = at("2026-11-23 19:00", "America/Los_Angeles")
    iv = interview(start, key="iv", timezone="Pacific Standard Time")
    labels = classified([iv], LONDON)
    ahead = detect([iv], labels, LONDON, start.astimezone(UTC) - timedelta(days=2))
    assert [(r.kind, r.severity, r.cause) for r in ahead] == [(RiskKind.ODD_HOUR, Severity.CRITICAL, "timezone")]
    after = detect([iv], labels, LONDON, start.astimezone(UTC) + timedelta(hours=2), marked_missed={"iv"})
    (missed,) = [r for r in after if r.kind is RiskKind.MISSED]
    assert missed.cause == "timezone" and "03:00" in missed.evidence


def test_all_day_out_of_office_is_read_in_the_users_zone_not_utc() -> None:
    # Auckland is UTC+13 in November: an all-day entry covers 11:00 UTC the day before to 11:00 UTC.
    config = make_config("Pacific/Auckland")
    day = date(2026, 11, 26)
    ooo = out_of_office(day, key="ooo")
    inside = interview(at("2026-11-25 12:00"), key="in")  # 01:00 on the 26th in Auckland
    outside = interview(at("2026-11-26 12:00"), key="out")  # 01:00 on the 27th
    config = make_config("Pacific/Auckland", detection={"waking_hours": {"start": "00:00", "end": "23:59"}})
    risks = detect([ooo, inside, outside], classified([ooo, inside, outside], config), config, NOW)
    assert {(r.occurrence_key, r.kind) for r in risks if r.kind is RiskKind.OUT_OF_OFFICE} == {
        ("in", RiskKind.OUT_OF_OFFICE)
    }


def test_interview_crossing_midnight_and_a_dst_change_is_compared_by_instant() -> None:
    # New York falls back at 02:00 on 1 Nov 2026: 23:30 + 3 h of real time ends at 01:30 (second one).
    ny = ZoneInfo("America/New_York")
    config = make_config("America/New_York", detection={"waking_hours": {"start": "00:00", "end": "23:59"}},
                         buffers={"before_minutes": 0, "after_minutes": 0, "travel_minutes": 0})
    iv = interview(at("2026-10-31 23:30", "America/New_York"), key="iv", minutes=180)
    touching = meeting(datetime(2026, 11, 1, 1, 30, tzinfo=ny, fold=1), key="after")  # starts as it ends
    inside = meeting(datetime(2026, 11, 1, 1, 30, tzinfo=ny, fold=0), key="inside", minutes=30)  # an hour earlier
    now = at("2026-10-30 12:00", "America/New_York")
    risks = detect([iv, touching, inside], classified([iv, touching, inside], config), config, now)
    assert {r.other_key for r in risks if r.kind is RiskKind.DOUBLE_BOOKED} == {"inside"}


# ---- recurrence exceptions ----------------------------------------------------------------------


def start_of(event: Event) -> datetime:
    assert isinstance(event.start, datetime)
    return event.start


def weekly_interviews(base: datetime, count: int = 3) -> list[Event]:
    return [
        interview(base + timedelta(days=7 * i), key="loop", series_id="loop", recurrence_id=base + timedelta(days=7 * i))
        for i in range(count)
    ]


def test_a_moved_occurrence_keeps_its_identity_and_clashes_at_its_new_time() -> None:
    base = at("2026-11-25 14:00")
    series = weekly_interviews(base)
    moved = replace(series[1], start=series[1].start + timedelta(hours=2), end=series[1].end + timedelta(hours=2))
    assert moved.occurrence_key == series[1].occurrence_key != series[0].occurrence_key
    old_slot = meeting(start_of(series[1]), key="old-slot")  # where it used to be: no longer a clash
    new_slot = meeting(start_of(moved), key="new-slot")
    events = [series[0], moved, series[2], old_slot, new_slot]
    risks = detect(events, classified(events, LONDON), LONDON, NOW)
    clashes = {(r.occurrence_key, r.other_key) for r in risks if r.kind is RiskKind.DOUBLE_BOOKED}
    assert clashes == {(moved.occurrence_key, "new-slot")}


def test_a_cancelled_occurrence_neither_clashes_nor_is_missed() -> None:
    base = at("2026-11-23 14:00")  # yesterday
    series = weekly_interviews(base)
    cancelled = replace(series[0], cancelled=True)
    meeting_then = meeting(base, key="m")
    events = [cancelled, *series[1:], meeting_then, meeting(start_of(series[1]), key="m2")]
    risks = detect(events, classified(events, LONDON), LONDON, NOW, marked_missed={cancelled.occurrence_key})
    assert {r.occurrence_key for r in risks} == {series[1].occurrence_key}
    assert all(r.kind is not RiskKind.MISSED for r in risks)


def test_moving_one_occurrence_after_a_reschedule_request_gets_a_thank_you_for_it_alone() -> None:
    base = at("2026-11-25 14:00")
    series = weekly_interviews(base)
    moved = replace(series[0], start=series[0].start + timedelta(days=1), end=series[0].end + timedelta(days=1))
    prior = PriorDraft(series[0].occurrence_key, ActionKind.RESCHEDULE, DraftState.SENT, NOW - timedelta(hours=3),
                       start_of(series[0]), RECRUITER, "loop")
    actions = run([moved, *series[1:]], context=PlanContext(prior=(prior,)))
    assert [(a.kind, a.occurrence_key) for a in actions] == [(ActionKind.THANK_YOU, series[0].occurrence_key)]


# ---- hostile text -------------------------------------------------------------------------------


HOSTILE = [
    "Interview\u202e\u2066 evil \u0000\r\nBcc: victim@example.com",
    "{{ config }} {% for x in range(10**9) %}Interview",
    "Interview " + "a" * 200_000,
    "\ud7ff\U0001f600 Interview \U0001f4a5" * 50,
    "İNTERVİEW (Turkish dotted capitals)",
]


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_text_is_classified_detected_and_planned_safely(title: str) -> None:
    iv = interview(at("2026-11-25 14:00"), key="iv", title=title, description=title * 2, location=title[:300])
    busy = meeting(at("2026-11-25 14:00"), key="m", title=title)
    started = clock.perf_counter()
    actions = run([iv, busy])
    assert clock.perf_counter() - started < 5
    for action in actions:
        for line in action.explanation:
            assert "\n" not in line and "\u202e" not in line and "\x00" not in line


# ---- the classifier's prefilter never changes a result ------------------------------------------


def matchers() -> list[classify_module._Matcher]:
    rules = classify_module._rules(LONDON)
    return [rules.strong, rules.hint, rules.negative, rules.tools, classify_module._PREP]


def test_prefilter_needles_are_case_safe_for_every_character() -> None:
    # For every code point that a needle character matches case-insensitively in `re`, lower() must
    # give that character, or the text must be one the prefilter leaves to the full pattern.
    chars = sorted({ch for m in matchers() for n in m.needles or () for ch in n})
    assert chars
    union = re.compile("[" + "".join(re.escape(c) for c in chars) + "]", re.IGNORECASE)
    singles = {c: re.compile(re.escape(c), re.IGNORECASE) for c in chars}
    for code in range(0x20000):
        t = chr(code)
        if 0xD800 <= code <= 0xDFFF or not union.fullmatch(t):
            continue
        for c, pattern in singles.items():
            if pattern.fullmatch(t):
                assert t.lower() == c or classify_module._odd_text(t), (hex(code), c)


WORDS = [w for w in (*classify_module.STRONG_KEYWORDS, *classify_module.HINT_KEYWORDS,
                     *classify_module.NEGATIVE_KEYWORDS, *classify_module._TOOL_NAMES)]


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(
        st.sampled_from(WORDS).map(lambda w: w.upper() if len(w) % 2 else w.title()),
        st.sampled_from(WORDS).map(lambda w: w.replace(" ", draw(st.sampled_from(["_", "-", "  ", "", " "])))),
        st.text(alphabet="İıſΣσςµμKßẞᲀвВ'’ -_xX", max_size=6),
        st.text(max_size=8),
    ), max_size=6))
    return "".join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts())
def test_prefilter_agrees_with_the_full_pattern(text: str) -> None:
    low = text.lower()
    for m in matchers():
        found, plain = m.search(text, low), m.pattern.search(text)
        assert (found and found.group(0)) == (plain and plain.group(0))


def test_custom_keywords_with_odd_letters_match_as_the_pattern_does() -> None:
    config = make_config(classification={"keywords": ["ΣΥΝΈΝΤΕΥΞΗ ΕΡΓΑΣΊΑΣ", "µ-interview", "İşe alım", "ᲀстреча"]})
    strong = classify_module._rules(config).strong
    titles = ("συνέντευξη εργασίας με την Acme", "ΣΥΝΈΝΤΕΥΞΗ ΕΡΓΑΣΊΑΣ", "Μ-interview", "µinterview", "ise alım",
              "İŞE ALIM", "ВСТРЕЧА", "встреча", "Vorstellungsgespräch", "VORSTELLUNGSGESPRÄCH")
    hits = 0
    for title in titles:
        found, plain = strong.search(title, title.lower()), strong.pattern.search(title)
        assert (found and found.group(0)) == (plain and plain.group(0)), title
        hits += bool(found)
    assert hits >= 8


# ---- the slot finder's shared index -------------------------------------------------------------


@st.composite
def crowded(draw: st.DrawFn) -> list[Event]:
    base = at("2026-11-25 08:00")
    out: list[Event] = []
    for i in range(draw(st.integers(1, 25))):
        start = base + timedelta(minutes=15 * draw(st.integers(0, 4 * 24 * 4)))
        minutes = draw(st.sampled_from([15, 30, 60, 120, 300]))
        if draw(st.booleans()):
            out.append(interview(start, key=f"i{i % 7}", minutes=minutes, account=f"a{i}"))  # some share a key
        else:
            out.append(meeting(start, key=f"m{i}", minutes=minutes))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crowded(), st.lists(st.sampled_from([f"i{k}" for k in range(7)] + ["m0", "m3", "nope"]), max_size=3))
def test_one_finder_ignoring_events_equals_a_search_without_them(events: list[Event], ignore: list[str]) -> None:
    config = make_config(slots={"min_notice_hours": 20, "horizon_days": 5, "spread": False, "count": 8})
    finder = SlotFinder(events, config)
    finder.find(NOW, HOUR)  # warm the shared cache with another query first
    got = finder.find(NOW, HOUR, ignore=set(ignore))
    kept = [e for e in events if e.occurrence_key not in ignore and e.source_id not in ignore]
    assert got == find_slots(kept, config, NOW, HOUR)
    assert finder.find(NOW, HOUR) == find_slots(events, config, NOW, HOUR)  # the cache is not disturbed


def test_planning_many_clashing_interviews_offers_only_free_slots() -> None:
    # 1,500 interviews in two weeks, each double-booked: one reschedule request each, no all-pairs work.
    start = at("2026-11-25 09:00")
    events: list[Event] = []
    for i in range(1500):
        when = start + timedelta(minutes=(i * 37) % (14 * 24 * 60))
        events.append(interview(when, key=f"iv{i}", title=f"Technical interview {i}", created=NOW - timedelta(days=2)))
        events.append(meeting(when, key=f"m{i}", minutes=30))
    config = make_config(detection={"waking_hours": {"start": "00:00", "end": "23:59"}}, slots={"min_notice_hours": 0})
    labels = classify_all(events, config)
    risks = detect(events, labels, config, NOW)
    actions = plan(events, labels, risks, config, NOW)  # its speed is measured in benchmarks/bench_core.py
    assert {a.kind for a in actions} == {ActionKind.RESCHEDULE} and len(actions) == 1500
    for action in actions[::97]:
        assert_slots_free(action.slots, events, config, NOW, HOUR, ignore={action.occurrence_key})


def test_declined_copy_of_an_interview_does_not_free_the_time() -> None:
    # Free, declined or cancelled entries never block; the accepted copy does.
    iv = interview(at("2026-11-26 09:00"), key="iv")
    declined = replace(iv, account="home", source_id="x", self_response=Response.DECLINED)
    free = meeting(at("2026-11-26 11:00"), key="f", show_as=ShowAs.FREE)
    config = make_config(slots={"min_notice_hours": 0, "spread": False, "count": 4})
    slots = find_slots([declined, free, iv], config, at("2026-11-26 08:00"), HOUR)
    assert_slots_free(slots, [iv], config, at("2026-11-26 08:00"), HOUR)
    assert slots[0].start.astimezone(UTC).time() == time(10, 30)
