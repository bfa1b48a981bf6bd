"""Planning: which drafts should exist, for whom, with which slots, reason and explanation."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from core_helpers import (
    ME,
    RECRUITER,
    assert_slots_free,
    at,
    attendee,
    classified,
    interview,
    make_config,
    meeting,
    out_of_office,
)

from daemon.config import Config
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
    person,
)
from daemon.core.plan import plan, plan_result, recipient_timezone, recipients_for

NOW = at("2026-11-24 09:00")  # Tuesday
LONDON = make_config()
TOMORROW = at("2026-11-25 14:00")


def run(
    events: list[Event], config: Config = LONDON, now: datetime = NOW, context: PlanContext | None = None
) -> list[Action]:
    context = context or PlanContext()
    labels = classified(events, config)
    risks = detect(events, labels, config, now, marked_missed=context.marked_missed)
    return plan(events, labels, risks, config, now, context)


def summary(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.kind.value, a.occurrence_key) for a in actions]


# ---- reschedule ---------------------------------------------------------------------------------


def test_double_booking_asks_the_organizer_to_reschedule() -> None:
    iv = interview(TOMORROW, key="iv")
    dentist = meeting(TOMORROW - timedelta(minutes=30), "Dentist - Dr Patel", key="m")
    events = [iv, dentist]
    (action,) = run(events)
    assert action.kind is ActionKind.RESCHEDULE and action.account == "work"
    assert [p.email for p in action.recipients] == [RECRUITER]
    assert action.risks == (RiskKind.DOUBLE_BOOKED,)
    assert action.reason == "scheduling_conflict" and action.recipient_timezone is None
    assert len(action.slots) == 3 and not action.call_first
    assert_slots_free(action.slots, events, LONDON, NOW, timedelta(hours=1), ignore={"iv"})
    assert any("double_booked (critical)" in line for line in action.explanation)
    assert "Dentist" not in action.reason
    # The advice is the user's: it names the clash ("consider your reason"); drafts never see notes.
    assert action.notes == ('This clash is with a health appointment ("Dentist - Dr Patel"): a routine appointment '
                            "is usually easier to move than an interview; if you are unwell, illness is a reason "
                            "interviewers accept, shared briefly.",)
    assert action.key == run(events)[0].key


def test_reason_comes_from_the_user_or_the_config_never_from_the_clash() -> None:
    events = [interview(TOMORROW, key="iv"), interview(TOMORROW, "Interview - Rival", key="rival",
                                                      organizer="x@rival.example")]
    context = PlanContext(reasons={"iv": "illness", "rival": "illness"})
    assert {a.reason for a in run(events, context=context)} == {"illness"}
    configured = make_config(drafts={"reason": "current_job"})
    assert {a.reason for a in run(events, configured)} == {"current_job"}


def test_interview_clash_moves_only_the_later_booked_one() -> None:
    older = interview(TOMORROW, "Final round - Initech", key="initech", minutes=120,
                      organizer="sam@initech.example", created=at("2026-11-10 10:00"))
    newer = interview(TOMORROW + timedelta(hours=1), "Panel interview - Globex", key="globex",
                      organizer="talent@globex.example", created=at("2026-11-18 16:00"))
    actions = run([older, newer])
    assert summary(actions) == [("reschedule_request", "globex")]
    assert any("booked later" in line for line in actions[0].explanation)
    assert_slots_free(actions[0].slots, [older, newer], LONDON, NOW, timedelta(hours=1), ignore={"globex"})
    # the other way round, and shuffled: still exactly one, the later-booked one
    swapped = run([replace(older, created=at("2026-11-20 10:00")), newer])
    assert summary(swapped) == [("reschedule_request", "initech")]


def test_clash_without_creation_times_moves_the_later_start_then_key_order() -> None:
    a = interview(TOMORROW, key="a", organizer="a@a.example")
    b = interview(TOMORROW + timedelta(minutes=30), key="b", organizer="b@b.example")
    assert summary(run([b, a])) == [("reschedule_request", "b")]
    c = interview(TOMORROW, key="c", organizer="c@c.example")
    assert summary(run([c, a])) == [("reschedule_request", "c")]


def test_clash_where_one_has_started_moves_the_other() -> None:
    running = interview(NOW - timedelta(minutes=20), key="running", minutes=120, created=at("2026-11-20 10:00"))
    later = interview(NOW + timedelta(minutes=30), key="later", organizer="b@b.example",
                      created=at("2026-11-01 10:00"))
    actions = run([running, later])
    assert summary(actions) == [("reschedule_request", "later")]
    assert actions[0].call_first  # less than a day's notice: phone first
    assert any("call" in note.lower() for note in actions[0].notes)


def test_a_clash_partner_that_moves_anyway_resolves_the_clash() -> None:
    a = interview(TOMORROW, key="a", organizer="a@a.example", created=at("2026-11-20 10:00"))
    b = interview(TOMORROW, key="b", organizer="b@b.example", created=at("2026-11-01 10:00"))
    dentist = meeting(TOMORROW + timedelta(minutes=30), "Dentist", key="m")  # overlaps both
    assert summary(run([a, b, dentist])) == [("reschedule_request", "a"), ("reschedule_request", "b")]
    ooo_for_b = replace(b, start=at("2026-11-30 10:00"), end=at("2026-11-30 11:00"))
    a_clash = replace(a, start=at("2026-11-30 10:00"), end=at("2026-11-30 11:00"))
    away = out_of_office(date(2026, 11, 30), key="ooo")
    # both are inside the out-of-office day: both must move regardless of their clash
    assert summary(run([a_clash, ooo_for_b, away])) == [("reschedule_request", "a"), ("reschedule_request", "b")]
    chain = [
        interview(TOMORROW, key="x", organizer="x@x.example", created=at("2026-11-01 10:00")),
        interview(TOMORROW + timedelta(minutes=30), key="y", organizer="y@y.example", created=at("2026-11-02 10:00")),
        interview(TOMORROW + timedelta(minutes=75), key="z", organizer="z@z.example", created=at("2026-11-01 09:00")),
    ]
    # y clashes with x and z; moving y alone resolves both clashes
    assert summary(run(chain)) == [("reschedule_request", "y")]


def test_tight_buffer_alone_makes_no_draft() -> None:
    iv = interview(TOMORROW, key="iv")
    m = meeting(TOMORROW - timedelta(minutes=65), key="m")
    labels = classified([iv, m], LONDON)
    risks = detect([iv, m], labels, LONDON, NOW)
    assert [r.kind for r in risks] == [RiskKind.TIGHT_BUFFER]
    assert plan([iv, m], labels, risks, LONDON, NOW) == []


def test_odd_hour_timezone_mistake_reschedules_in_their_zone() -> None:
    start = at("2026-11-26 19:00", "America/Los_Angeles")
    iv = interview(start, key="iv", timezone="Pacific Standard Time", organizer="dana@umbrella.example")
    (action,) = run([iv])
    assert action.kind is ActionKind.RESCHEDULE and action.risks == (RiskKind.ODD_HOUR,)
    assert action.recipient_timezone == "America/Los_Angeles"
    # The honest reason is the fact itself, not a made-up conflict; a reason you give still wins.
    assert action.reason == "time_zone"
    assert any("set up in America/Los_Angeles" in line for line in action.explanation)
    (given,) = run([iv], context=PlanContext(reasons={iv.occurrence_key: "illness"}))
    assert given.reason == "illness"
    # slots that are reasonable for Los Angeles too (07:00 there at the earliest)
    for slot in action.slots:
        assert slot.start.astimezone(iv.start.tzinfo).hour >= 7  # type: ignore[arg-type]
    early = interview(at("2026-11-26 06:00"), key="early", timezone="Europe/London")
    assert run([early]) == []  # an early start in your own zone is only a warning


def test_out_of_office_and_travel_reschedule() -> None:
    away = out_of_office(date(2026, 11, 30), 5, key="ooo")
    iv = interview(at("2026-12-02 10:00"), key="iv")
    (action,) = run([away, iv])
    assert action.risks == (RiskKind.OUT_OF_OFFICE,)
    assert all(not (date(2026, 11, 30) <= s.start.date() < date(2026, 12, 5)) for s in action.slots)
    onsite = interview(TOMORROW, "Onsite interview", key="onsite", link=False, location="1 Canary Wharf, London")
    office = meeting(TOMORROW - timedelta(minutes=70), key="m", location="10 King St, Manchester")
    (action,) = run([onsite, office])
    assert action.risks == (RiskKind.TRAVEL,)


def test_no_reschedule_once_started() -> None:
    start = NOW - timedelta(minutes=5)
    iv = interview(start, key="iv")
    m = meeting(start, key="m")
    assert run([iv, m]) == []  # too late to reschedule, too early to call it missed


# ---- missed and follow-up -----------------------------------------------------------------------


def missed_world(hours_ago: float) -> tuple[list[Event], datetime]:
    start = NOW - timedelta(hours=hours_ago)
    iv = interview(start, "Phone screen - Hooli", key="iv", minutes=30, organizer="priya@hooli.example",
                   organizer_name="Priya Shah",
                   description="If we get disconnected, call me back on +44 20 7946 0321.")
    m = meeting(start - timedelta(minutes=30), key="m", minutes=120)
    return [iv, m], NOW


def test_just_missed_makes_a_missed_draft_with_a_call_first_note() -> None:
    events, now = missed_world(1)
    (action,) = run(events, now=now)
    assert action.kind is ActionKind.MISSED and action.call_first
    assert action.phone == "+44 20 7946 0321"
    assert action.notes[0] == "Call Priya Shah first: +44 20 7946 0321"
    assert action.notes[1].startswith('This clash is with work ("Quarterly planning"): a commitment at your current '
                                      "job is a reason interviewers accept")
    assert len(action.slots) == 3 and action.risks == (RiskKind.MISSED,)
    assert [p.email for p in action.recipients] == ["priya@hooli.example"]


def test_missed_without_a_phone_number_still_says_call_first() -> None:
    start = NOW - timedelta(hours=1)
    iv = interview(start, key="iv")
    (action,) = run([iv], context=PlanContext(marked_missed=frozenset({"iv"}), reasons={"iv": "illness"}))
    assert action.kind is ActionKind.MISSED and action.call_first and action.phone is None
    assert action.reason == "illness"
    assert "first" in action.notes[0] and "none was found" in action.notes[0]


def test_a_miss_noticed_late_still_gets_the_missed_draft_first() -> None:
    # 21 h after the start, first noticed now (a laptop that slept): the first contact is the apology,
    # never a follow-up "apologising once more"; the follow-up is timed from when the miss was noticed.
    events, now = missed_world(21)
    (action,) = run(events, now=now)
    assert action.kind is ActionKind.MISSED and action.call_first and action.slots and action.case.follows_miss
    made = PriorDraft("iv", ActionKind.MISSED, DraftState.UNTOUCHED, now, events[0].start, "priya@hooli.example")  # type: ignore[arg-type]
    later = now + timedelta(hours=20)
    (follow,) = run(events, now=later, context=PlanContext(prior=(made,), missed_at={"iv": now}))
    assert follow.kind is ActionKind.FOLLOW_UP and not follow.call_first and not follow.case.apology_sent


def test_follow_up_waits_for_the_missed_draft_to_age() -> None:
    events, now = missed_world(19)
    made = now - timedelta(hours=1)
    prior = PriorDraft("iv", ActionKind.MISSED, DraftState.UNTOUCHED, made, events[0].start, "priya@hooli.example")  # type: ignore[arg-type]
    context = PlanContext(prior=(prior,))
    assert summary(run(events, now=now, context=context)) == [("missed_interview", "iv")]
    later = made + timedelta(hours=19, minutes=30)  # 39.5 h after the start, but the draft is younger
    assert summary(run(events, now=later, context=context)) == [("missed_interview", "iv")]
    much_later = made + timedelta(hours=20)
    assert summary(run(events, now=much_later, context=context)) == [("follow_up_apology", "iv")]
    # whatever became of the missed-interview draft, the follow-up comes
    sent = PlanContext(prior=(replace(prior, state=DraftState.SENT),))
    assert summary(run(events, now=later, context=sent)) == []
    assert summary(run(events, now=much_later, context=sent)) == [("follow_up_apology", "iv")]


def test_deleted_or_sent_drafts_are_not_proposed_again() -> None:
    events, now = missed_world(25)
    deleted = PriorDraft("iv", ActionKind.FOLLOW_UP, DraftState.DELETED, now - timedelta(hours=1))
    result = plan_result(events, classified(events, LONDON), detect(events, classified(events, LONDON), LONDON, now),
                         LONDON, now, PlanContext(prior=(deleted,)))
    assert result.actions == []
    # deleting the last draft of a missed interview closes its case: nothing more is drafted for it
    assert result.cases["iv"].phase.value == "closed" and "deleted" in result.cases["iv"].close_reason
    iv = interview(TOMORROW, key="iv")
    sent = PriorDraft("iv", ActionKind.RESCHEDULE, DraftState.SENT, NOW - timedelta(hours=1), TOMORROW, RECRUITER)
    assert run([iv, meeting(TOMORROW, key="m")], context=PlanContext(prior=(sent,))) == []


def test_attended_after_all_means_no_draft() -> None:
    start = NOW - timedelta(hours=2)
    assert run([interview(start, key="iv")]) == []


# ---- join info ----------------------------------------------------------------------------------


def test_missing_join_info_asks_for_it() -> None:
    (action,) = run([interview(TOMORROW, "Video interview - Wayne", key="iv", link=False)])
    assert action.kind is ActionKind.JOIN_INFO and action.risks == (RiskKind.NO_JOIN_INFO,)
    assert not action.slots


# ---- thank you ----------------------------------------------------------------------------------


def prior_reschedule(state: DraftState, start: datetime, key: str = "iv") -> PriorDraft:
    return PriorDraft(key, ActionKind.RESCHEDULE, state, NOW - timedelta(days=1), start, RECRUITER, key)


def test_moved_interview_gets_a_thank_you() -> None:
    moved = interview(TOMORROW + timedelta(days=2), key="iv")
    context = PlanContext(prior=(prior_reschedule(DraftState.SENT, TOMORROW),))
    (action,) = run([moved], context=context)
    assert action.kind is ActionKind.THANK_YOU and [p.email for p in action.recipients] == [RECRUITER]
    assert any("moved" in line for line in action.explanation)
    for state in (DraftState.PENDING, DraftState.WITHDRAWN):
        assert run([moved], context=PlanContext(prior=(prior_reschedule(state, TOMORROW),))) == []
    unmoved = interview(TOMORROW, key="iv")
    assert run([unmoved], context=context) == []


def test_no_thank_you_while_the_new_time_still_needs_moving() -> None:
    moved = interview(TOMORROW + timedelta(days=2), key="iv")
    clash = meeting(TOMORROW + timedelta(days=2), key="m")
    context = PlanContext(prior=(prior_reschedule(DraftState.UNTOUCHED, TOMORROW),))
    assert summary(run([moved, clash], context=context)) == [("reschedule_request", "iv")]


def test_new_invitation_from_the_same_organizer_gets_a_thank_you() -> None:
    old = interview(TOMORROW, key="old", cancelled=True)
    new = interview(TOMORROW + timedelta(days=3), key="new", created=NOW - timedelta(hours=2))
    context = PlanContext(prior=(prior_reschedule(DraftState.EDITED, TOMORROW, key="old"),))
    assert summary(run([old, new], context=context)) == [("thank_you", "new")]
    # not while the old interview is still there, unchanged
    still = interview(TOMORROW, key="old")
    assert summary(run([still, new], context=context)) == []
    # not for an invitation that existed before the request
    older = replace(new, created=NOW - timedelta(days=5))
    assert summary(run([old, older], context=context)) == []
    # not from somebody else
    stranger = interview(TOMORROW + timedelta(days=3), key="new", organizer="x@other.example",
                         created=NOW - timedelta(hours=2))
    assert summary(run([old, stranger], context=context)) == []


def test_thank_you_stays_planned_once_drafted() -> None:
    moved = interview(TOMORROW + timedelta(days=2), key="iv")
    # the reschedule draft was withdrawn (its reason went away) after the thank-you was drafted
    prior = (
        prior_reschedule(DraftState.WITHDRAWN, TOMORROW),
        PriorDraft("iv", ActionKind.THANK_YOU, DraftState.UNTOUCHED, NOW - timedelta(hours=1), moved.start, RECRUITER),  # type: ignore[arg-type]
    )
    assert summary(run([moved], context=PlanContext(prior=prior))) == [("thank_you", "iv")]


# ---- recipients ---------------------------------------------------------------------------------


def test_recipients_when_the_user_organised_it() -> None:
    room = person("room-4@acme.example", "Room 4", is_resource=True)
    cal = person("c_123@resource.calendar.google.com", "Big room")
    people = (ME, attendee("kim@acme.example", "Kim"), room, cal, attendee("alex@example.com"),
              attendee("kim@acme.example", "Kim again"))
    iv = interview(TOMORROW, key="iv", organizer=None, attendees=people)
    iv = replace(iv, organizer=person("alex@example.com", "Alex"))
    assert [p.email for p in recipients_for(iv, LONDON)] == ["kim@acme.example"]
    alias = make_config(user={"aliases": ["alex.m@personal.example"]})
    own = replace(iv, organizer=person("ALEX.M@personal.example"))
    assert [p.email for p in recipients_for(own, alias)] == ["kim@acme.example"]
    noreply = replace(iv, organizer=person("no-reply@greenhouse.io"))
    assert [p.email for p in recipients_for(noreply, LONDON)] == ["kim@acme.example"]


def test_nobody_to_write_to_means_no_action_but_an_explanation() -> None:
    lonely = interview(TOMORROW, key="iv", organizer=None, attendees=(ME,),
                       title="Interview - Acme", description="Scheduled via Greenhouse")
    events = [lonely, meeting(TOMORROW, key="m")]
    labels = classified(events, LONDON)
    assert labels["iv"].is_interview
    result = plan_result(events, labels, detect(events, labels, LONDON, NOW), LONDON, NOW)
    assert result.actions == []
    assert result.skipped[0].kind is ActionKind.RESCHEDULE and "nobody to write to" in result.skipped[0].why


def test_recipient_timezone() -> None:
    la = interview(TOMORROW, key="iv", timezone="America/Los_Angeles")
    assert recipient_timezone(la, LONDON, TOMORROW) == "America/Los_Angeles"
    assert recipient_timezone(replace(la, timezone="Europe/London"), LONDON, TOMORROW) is None
    assert recipient_timezone(replace(la, timezone="GMT Standard Time"), LONDON, TOMORROW) is None
    assert recipient_timezone(replace(la, timezone="Europe/Belfast"), LONDON, TOMORROW) is None
    assert recipient_timezone(replace(la, timezone="Not/AZone"), LONDON, TOMORROW) is None
    assert recipient_timezone(replace(la, timezone=None), LONDON, TOMORROW) is None


# ---- order and determinism ----------------------------------------------------------------------


def busy_week() -> list[Event]:
    return [
        interview(TOMORROW, key="a", created=at("2026-11-10 10:00")),
        interview(TOMORROW + timedelta(minutes=30), key="b", organizer="b@b.example", created=at("2026-11-12 10:00")),
        meeting(at("2026-11-26 10:00"), key="m"),
        interview(at("2026-11-26 10:30"), key="c", organizer="c@c.example"),
        interview(at("2026-11-25 17:00"), "Video interview", key="d", organizer="d@d.example", link=False),
        interview(NOW - timedelta(hours=1), "[missed] Interview", key="e", organizer="e@e.example"),
        out_of_office(date(2026, 12, 1), key="ooo"),
        interview(at("2026-12-01 09:00"), key="f", organizer="f@f.example"),
    ]


def test_one_action_per_occurrence_and_kind_in_a_stable_order() -> None:
    actions = run(busy_week())
    assert summary(actions) == [
        ("missed_interview", "e"),
        ("reschedule_request", "b"),
        ("ask_join_info", "d"),
        ("reschedule_request", "c"),
        ("reschedule_request", "f"),
    ]
    assert len({a.key for a in actions}) == len(actions)
    for seed in range(5):
        shuffled = busy_week()
        random.Random(seed).shuffle(shuffled)
        assert run(shuffled) == actions


def test_explanations_are_short_lines() -> None:
    for action in run(busy_week()):
        assert action.explanation and all(0 < len(line) < 300 and "\n" not in line for line in action.explanation)


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="now"):
        plan([], {}, [], LONDON, datetime(2026, 11, 24, 9))  # noqa: DTZ001


def test_declined_interview_gets_nothing() -> None:
    iv = interview(TOMORROW, key="iv", self_response=Response.DECLINED)
    assert run([iv, meeting(TOMORROW, key="m")]) == []


# ---- slots shared between drafts ----------------------------------------------------------------


def test_no_two_drafts_offer_the_same_time_to_different_employers() -> None:
    # Five double-booked interviews on one day: every draft proposes slots, and no proposed time
    # (with the buffers around it) is offered in two drafts, so two "yes" answers can never clash.
    events: list[Event] = []
    for n in range(5):
        start = at("2026-11-26 10:00") + timedelta(hours=n)
        events.append(interview(start, key=f"iv{n}", organizer=f"hr{n}@corp{n}.example", organizer_name=f"HR {n}"))
        events.append(meeting(start, f"Busy {n}", key=f"m{n}"))
    actions = [a for a in run(events) if a.kind is ActionKind.RESCHEDULE]
    assert len(actions) == 5 and all(len(a.slots) == 3 for a in actions)
    buffer = timedelta(minutes=LONDON.buffers.before_minutes)
    offered = sorted((s.start, s.end) for a in actions for s in a.slots)
    for (_, end), (start, _) in zip(offered, offered[1:], strict=False):
        assert end + buffer <= start
    for action in actions:
        assert_slots_free(action.slots, events, LONDON, NOW, timedelta(hours=1), ignore={action.occurrence_key})
    # The soonest interview chooses first; the choice is stable.
    assert [a.slots for a in actions] == [a.slots for a in run(list(reversed(events))) if a.kind is ActionKind.RESCHEDULE]


def test_a_full_fortnight_looks_one_horizon_further() -> None:
    config = make_config(slots={"horizon_days": 7})
    iv = interview(TOMORROW, key="iv")
    # Busy every working hour of the next 7 days except for the clash itself.
    blocks = [meeting(at(f"{day} 08:00"), "Workshop", key=f"w{day}", minutes=11 * 60)
              for day in ("2026-11-25", "2026-11-26", "2026-11-27", "2026-11-30", "2026-12-01")]
    (action,) = [a for a in run([iv, *blocks], config) if a.kind is ActionKind.RESCHEDULE]
    assert len(action.slots) == 3
    assert all(s.start.date() > date(2026, 12, 1) for s in action.slots)
    assert all(s.start.date() <= date(2026, 12, 8) for s in action.slots)
