"""Invitation emails as a source of truth: the facts they state, and time_mismatch when they disagree."""

from __future__ import annotations

from datetime import timedelta

import pytest
from core_helpers import at, classified, interview, make_config
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.detect import detect
from daemon.core.invitation import parse_invitation, stated_times, time_mismatch, with_invitation
from daemon.core.model import InvitationFacts, RiskKind, Severity, StatedTime
from daemon.core.plan import plan
from daemon.engine.codec import event_from_json, event_to_json

NY = make_config("America/New_York")
START = at("2026-11-24 14:00", "America/Los_Angeles")  # 2pm PT = 17:00 ET
NOW = START - timedelta(days=2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your interview is confirmed for Tuesday, November 24 at 2pm ET.", (14, 0, "America/New_York", 11, 24)),
        ("Tuesday Nov 24, 2026 ⋅ 10am – 11am (Pacific Time - Los Angeles)", (10, 0, "America/Los_Angeles", 11, 24)),
        ("When: Tuesday, November 24, 2026 10:00 AM-11:00 AM (UTC-08:00) Pacific Time (US & Canada).",
         (10, 0, "America/Los_Angeles", 11, 24)),
        ("Termin: 24. November 2026, 14:00 CET", (14, 0, "Europe/Berlin", 11, 24)),
        ("at 14:00 (Europe/Berlin)", (14, 0, "Europe/Berlin", None, None)),
        ("11-1pm PT", (11, 0, "America/Los_Angeles", None, None)),
        ("2:00 - 3:00 PM ET", (14, 0, "America/New_York", None, None)),
        ("at 10.30 am BST", (10, 30, "Europe/London", None, None)),
        ("12pm Eastern Time", (12, 0, "America/New_York", None, None)),
    ],
)
def test_stated_times(text: str, expected: tuple[object, ...]) -> None:
    (found,) = stated_times(text)
    assert (found.hour, found.minute, found.zone, found.month, found.day) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Agenda (Eastern Time):\n9:30 AM - Hiring manager\n10:30 AM - System design",  # no zone per time
        "call me at 3 ET", "Meeting ID 123 456 7890 ET", "see you at 2pm", "14:00 IST",  # IST: which one?
        "at 10:00 (UTC-08:00)",  # Outlook's standard-offset label alone is not the day's offset
    ],
)
def test_times_without_a_certain_zone_are_not_stated(text: str) -> None:
    assert stated_times(text) == ()


def test_parse_invitation_finds_phone_link_and_time() -> None:
    facts = parse_invitation(
        "Hi Alex,\nYou'll meet Priya at 2pm ET on November 24.\nIf the link fails, call Priya on "
        "+1 415 555 0148.\nJoin: https://acme.zoom.us/j/83412209931\n",
        subject="Interview confirmed: Acme Robotics",
    )
    assert facts.subject == "Interview confirmed: Acme Robotics"
    assert facts.phones == ("+1 415 555 0148",)
    assert facts.join_urls == ("https://acme.zoom.us/j/83412209931",)
    assert [(t.hour, t.zone, t.month, t.day) for t in facts.times] == [(14, "America/New_York", 11, 24)]


def test_the_email_adds_what_the_event_lacks() -> None:
    event = interview(START, link=False)
    facts = InvitationFacts(phones=("+1 415 555 0148",), join_urls=("https://acme.zoom.us/j/1",))
    enriched = with_invitation(event, facts)
    assert enriched.phones == ("+1 415 555 0148",) and enriched.join_urls == ("https://acme.zoom.us/j/1",)
    assert enriched.invitation == facts
    assert with_invitation(enriched, facts).join_urls == enriched.join_urls  # no repeats


def _with_email(text: str, **fields: object):  # type: ignore[no-untyped-def]
    event = interview(START, timezone="America/Los_Angeles", **fields)
    return with_invitation(event, parse_invitation(text))


def test_2pm_et_in_the_email_for_a_2pm_pt_event_is_a_critical_mismatch() -> None:
    event = _with_email("Looking forward to speaking on Tuesday, November 24 at 2pm ET.")
    risk = time_mismatch(event, START, NY)
    assert risk is not None and risk.kind is RiskKind.TIME_MISMATCH
    assert risk.severity is Severity.CRITICAL and risk.cause == "timezone"
    assert risk.evidence == (
        'the invitation email says "2pm ET", which is 14:00 your time, but the calendar has it at 17:00; '
        "going by the calendar you would be late"
    )


def test_an_email_that_agrees_or_only_mentions_other_times_raises_nothing() -> None:
    assert time_mismatch(_with_email("See you at 2pm PT on November 24."), START, NY) is None
    assert time_mismatch(_with_email("That is 5:00 PM ET for you."), START, NY) is None
    assert time_mismatch(_with_email("Please log in by 1:45pm ET to test audio."), START, NY) is None  # undated, no echo
    assert time_mismatch(_with_email("Our office hours are 9am-5pm PT, 2pm ET the 26 November"), START, NY) is None
    assert time_mismatch(interview(START), START, NY) is None  # no email read


def test_a_dated_statement_of_another_time_that_day_is_a_warning_when_later() -> None:
    event = _with_email("Confirmed: November 24, 3pm PT.")
    risk = time_mismatch(event, START, NY)
    assert risk is not None and risk.severity is Severity.WARNING
    assert "18:00 your time" in risk.evidence and "late" not in risk.evidence


def test_detect_reports_it_and_the_planner_drafts_nothing_for_it() -> None:
    event = _with_email("Tuesday Nov 24, 2026 ⋅ 2pm – 3pm (Eastern Time - New York)")
    found = classified([event], NY)
    risks = detect([event], found, NY, NOW)
    assert [r.kind for r in risks] == [RiskKind.TIME_MISMATCH]
    assert plan([event], found, risks, NY, NOW) == []


def test_ignore_kinds_can_silence_it() -> None:
    config = make_config("America/New_York", detection={"ignore_kinds": ["time_mismatch"]})
    event = _with_email("at 2pm ET on November 24")
    assert detect([event], classified([event], config), config, NOW) == []


def test_the_facts_survive_the_state_store_codec() -> None:
    facts = InvitationFacts("Interview", ("+1 415 555 0148",), ("https://zoom.us/j/1",),
                            (StatedTime("2pm ET", 14, 0, "America/New_York", None, 11, 24),))
    event = with_invitation(interview(START), facts)
    assert event_from_json(event_to_json(event)) == event
    assert event_from_json(event_to_json(interview(START))).invitation is None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([*"0123456789 :-–apmETPSTCGMUTC()/\nNovember,", "2pm ET", "Pacific Time",
                                  "(UTC-08:00) ", "Europe/Berlin", "12:", " 25 "]), max_size=80))
def test_the_parser_never_fails_and_only_states_valid_clock_times(pieces: list[str]) -> None:
    for found in parse_invitation("".join(pieces)).times:
        assert 0 <= found.hour <= 23 and 0 <= found.minute <= 59 and found.zone


def test_a_long_hostile_text_is_read_quickly() -> None:
    import time

    text = ("10 " * 20_000) + ("Tuesday - " * 2_000) + "2pm ET - " + "Aaaa " * 5_000
    began = time.perf_counter()
    parse_invitation(text)
    assert time.perf_counter() - began < 5  # generous: a regex gone quadratic takes minutes
