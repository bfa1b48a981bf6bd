"""What the planner tells the writer and the user: mode, phone first, advice on the reason, case facts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from core_helpers import ME, RECRUITER, at, classified, interview, make_config, meeting

from daemon.config import Config
from daemon.core.advice import clash_advice, clash_kind
from daemon.core.detect import detect
from daemon.core.mode import interview_mode
from daemon.core.model import (
    Action,
    ActionKind,
    DraftState,
    Event,
    Mode,
    PlanContext,
    PriorDraft,
    Response,
    person,
)
from daemon.core.plan import plan

NOW = at("2026-11-24 09:00")  # Tuesday
LONDON = make_config()
NEXT_WEEK = at("2026-12-01 14:00")
TOMORROW = at("2026-11-25 14:00")


def run(events: list[Event], config: Config = LONDON, now: datetime = NOW,
        context: PlanContext | None = None) -> list[Action]:
    context = context or PlanContext()
    labels = classified(events, config)
    risks = detect(events, labels, config, now, marked_missed=context.marked_missed)
    return plan(events, labels, risks, config, now, context)


# ---- how the interview is held -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        ({"title": "Technical interview - Acme"}, Mode.VIDEO),  # the helper's Zoom link
        ({"title": "Phone screen - Hooli", "link": False, "location": "Phone call"}, Mode.PHONE),
        ({"title": "Phone screen - Hooli", "link": False, "phones": ("+44 20 7946 0321",)}, Mode.PHONE),
        ({"title": "Recruiter call - Pied Piper"}, Mode.VIDEO),  # a call held on Meet is a video call
        ({"title": "Video interview - Wayne", "link": False}, Mode.VIDEO),
        ({"title": "Interview - Stark", "link": False, "location": "1 Canary Wharf, London E14 5AB"}, Mode.ONSITE),
        ({"title": "Onsite interview - Stark", "link": False}, Mode.ONSITE),
        ({"title": "Interview - Initech", "link": False}, Mode.UNKNOWN),
    ],
)
def test_interview_mode(fields: dict[str, object], mode: Mode) -> None:
    title = str(fields.pop("title"))
    assert interview_mode(interview(TOMORROW, title, **fields)) is mode  # type: ignore[arg-type]


def test_actions_carry_the_mode() -> None:
    onsite = interview(NEXT_WEEK, "Onsite interview", key="iv", link=False, location="1 Canary Wharf, London")
    (action,) = run([onsite, meeting(NEXT_WEEK, key="m")])
    assert action.mode is Mode.ONSITE


# ---- phone first, whatever the notice -----------------------------------------------------------


def test_a_number_in_the_invitation_means_call_first_even_a_week_ahead() -> None:
    iv = interview(NEXT_WEEK, key="iv", description="Questions? Call me on +44 20 7946 0321.")
    (action,) = run([iv, meeting(NEXT_WEEK, key="m")])
    assert action.kind is ActionKind.RESCHEDULE and action.call_first
    assert action.phone == "+44 20 7946 0321"
    assert action.notes[0] == "Call Jordan Lee first: +44 20 7946 0321, then send the draft."
    without = interview(NEXT_WEEK, key="iv")
    (plain,) = run([without, meeting(NEXT_WEEK, key="m")])
    assert not plain.call_first and not any("Call" in n for n in plain.notes)
    soon = interview(NOW + timedelta(hours=5), key="iv")
    (late,) = run([soon, meeting(NOW + timedelta(hours=5), key="m")])
    assert late.call_first and late.notes[0].startswith("Short notice: call Jordan Lee first")


# ---- advice to the user: consider your reason ---------------------------------------------------


def concert(start: datetime) -> Event:
    return meeting(start - timedelta(minutes=30), "Concert - Royal Albert Hall", key="gig", minutes=180,
                   organizer=None, attendees=())


def test_a_clash_with_a_concert_advises_moving_the_concert() -> None:
    iv = interview(NEXT_WEEK, key="iv")
    (action,) = run([iv, concert(NEXT_WEEK)])
    advice = action.notes[-1]
    assert advice.startswith('This clash is with a concert ("Concert - Royal Albert Hall"): interviewers rarely '
                             "forgive that; consider moving the concert instead.")
    assert action.reason == "scheduling_conflict"  # no reason is invented


def test_a_clash_with_another_interview_says_never_cite_it() -> None:
    first = interview(NEXT_WEEK, "Final interview - Globex", key="a", organizer="t@globex.example",
                      created=NOW - timedelta(days=5))
    second = interview(NEXT_WEEK, key="b", created=NOW - timedelta(days=1))
    (action,) = run([first, second])
    assert action.occurrence_key == "b"
    assert 'This clash is with another interview ("Final interview - Globex"): never cite it' in action.notes[-1]


def test_a_clash_with_work_says_it_is_an_accepted_reason() -> None:
    iv = interview(NEXT_WEEK, key="iv")
    (action,) = run([iv, meeting(NEXT_WEEK, key="m")])
    assert action.notes[-1].startswith('This clash is with work ("Quarterly planning"): a commitment at your '
                                       "current job is a reason interviewers accept, shared briefly")
    given = run([iv, meeting(NEXT_WEEK, key="m")], context=PlanContext(reasons={"iv": "illness"}))
    assert given[0].notes[-1] == ("Your reason (illness) is one interviewers accept: the draft shares it briefly, "
                                  "with no detail.")


@pytest.mark.parametrize(
    ("title", "kind"),
    [("Coldplay concert", "leisure"), ("Opening day!", "leisure"), ("Dentist", "health"),
     ("School pick-up", "family"), ("Sprint review", "work"), ("Block", "other")],
)
def test_clash_kinds(title: str, kind: str) -> None:
    other = meeting(NEXT_WEEK, title, organizer=None, attendees=())
    assert clash_kind(other, False)[0] == kind
    assert clash_kind(other, True)[0] == "interview"
    assert (clash_advice(other, False, "scheduling_conflict", False) is None) == (kind == "other")


# ---- case facts the planner knows ---------------------------------------------------------------


def test_a_thank_you_after_a_miss_says_so() -> None:
    moved = interview(TOMORROW + timedelta(days=2), key="iv")
    missed = PriorDraft("iv", ActionKind.MISSED, DraftState.SENT, NOW - timedelta(days=1), TOMORROW, RECRUITER, "iv")
    (action,) = run([moved], context=PlanContext(prior=(missed,)))
    assert action.kind is ActionKind.THANK_YOU and action.case.follows_miss
    asked = PriorDraft("iv", ActionKind.RESCHEDULE, DraftState.SENT, NOW - timedelta(days=1), TOMORROW, RECRUITER, "iv")
    (plain,) = run([moved], context=PlanContext(prior=(asked,)))
    assert not plain.case.follows_miss


def test_the_follow_up_knows_whether_the_apology_was_sent() -> None:
    start = NOW - timedelta(hours=30)
    iv = interview(start, key="iv", minutes=30)
    clash = meeting(start - timedelta(minutes=30), key="m", minutes=120)
    for state, sent in ((DraftState.SENT, True), (DraftState.UNTOUCHED, False)):
        prior = PriorDraft("iv", ActionKind.MISSED, state, start + timedelta(minutes=20), start, RECRUITER, "iv")
        (action,) = run([iv, clash], context=PlanContext(prior=(prior,)))
        assert action.kind is ActionKind.FOLLOW_UP
        assert action.case.follows_miss and action.case.apology_sent is sent


# ---- the time they probably meant, and zones that share no working hour -------------------------


def test_the_time_zone_variant_proposes_the_same_clock_time_in_the_users_zone() -> None:
    start = at("2026-11-26 19:00", "America/Los_Angeles")
    iv = interview(start, key="iv", timezone="America/Los_Angeles", organizer="dana@umbrella.example")
    (action,) = run([iv])
    assert action.reason == "time_zone" and action.probable is not None
    assert action.probable.start == at("2026-11-26 19:00", "Europe/London")  # = 11:00 PST
    assert action.probable.start.astimezone(start.tzinfo).hour == 11
    assert action.probable not in action.slots
    busy = meeting(at("2026-11-26 18:30", "Europe/London"), key="m", minutes=60)
    (taken,) = run([iv, busy])
    assert taken.probable is None  # not offered when the user is busy then


def test_no_shared_working_hour_is_flagged() -> None:
    madrid = make_config("Europe/Madrid")
    start = at("2026-12-01 10:00", "Australia/Sydney")
    iv = interview(start, key="iv", timezone="Australia/Sydney", organizer="kim@outback.example")
    (action,) = run([iv, meeting(start, key="m")], config=madrid)
    assert action.recipient_timezone == "Australia/Sydney" and not action.hours_overlap
    for slot in action.slots:
        assert 7 <= slot.start.astimezone(madrid.user.zone).hour < 22
        assert not 19 <= slot.start.astimezone(start.tzinfo).hour  # type: ignore[arg-type]
    (near,) = run([interview(NEXT_WEEK, key="iv", timezone="America/New_York"), meeting(NEXT_WEEK, key="m")])
    assert near.hours_overlap


def test_an_onsite_interview_is_not_offered_right_after_another_call() -> None:
    config = make_config(buffers={"travel_minutes": 60}, slots={"count": 1})
    onsite = interview(NEXT_WEEK, "Onsite interview", key="iv", link=False, location="1 Canary Wharf, London")
    clash = meeting(NEXT_WEEK, key="m")
    call = meeting(at("2026-11-25 09:00"), "Client call", key="call", minutes=60,
                   organizer=None, attendees=(person("x@client.example", "X", Response.ACCEPTED), ME))
    (action,) = run([onsite, clash, call], config=config)
    (slot,) = action.slots
    assert slot.start >= at("2026-11-25 11:00")  # an hour to get there after the call ends at 10:00
