"""Rendering drafts: every kind and reason, zones and DST, threading, HTML, overrides, hostile input."""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daemon.config import REASONS, TIME_ZONE_REASON, Config, parse_config
from daemon.core.model import (
    Action,
    ActionKind,
    CaseFacts,
    Event,
    Person,
    Risk,
    RiskKind,
    Severity,
    Slot,
    person,
)
from daemon.engine.render import Renderer, RenderError, template_problems, zone_label
from providers.base import ThreadInfo
from providers.mime import build_message, parse_message, plain_body

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
JANE = person("jane.doe@acme.example", "Jane Doe")
START = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # US already on DST, UK not yet: 4 h apart
NOW = START - timedelta(days=3)


def make_config(**drafts: Any) -> Config:
    lines = "\n".join(f"  {k}: {v}" for k, v in drafts.items())
    text = f"""
user:
  name: Alex Candidate
  email: alex@example.org
  timezone: Europe/London
  phone: "+44 7700 900123"
  signature: "Portfolio: https://alex.example.org"
accounts:
  - name: main
    calendar: {{type: ics, path: /nonexistent/cal.ics}}
    drafts: {{type: folder, path: /nonexistent/drafts}}
  - name: work
    email: alex@work.example
    calendar: {{type: ics, path: /nonexistent/cal.ics}}
    drafts: {{type: folder, path: /nonexistent/drafts}}
drafts:
{lines if drafts else "  html: false"}
"""
    return parse_config(text)


def interview(**kw: Any) -> Event:
    base: dict[str, Any] = dict(
        account="main",
        source_id="evt-1",
        title="Technical interview – Acme",
        start=START,
        end=START + timedelta(hours=1),
        timezone="America/New_York",
        description="Panel: Jane, Bob. Internal note: bring the portfolio.",
        location="Acme HQ, 5th floor",
        organizer=JANE,
        attendees=(JANE, person("alex@example.org", "Alex", is_self=True)),
        phones=("+1 212 555 0100",),
    )
    base.update(kw)
    return Event(**base)


def slots(start: datetime = START, n: int = 3) -> tuple[Slot, ...]:
    return tuple(Slot(start + timedelta(days=d), start + timedelta(days=d, hours=1)) for d in range(1, n + 1))


def action(kind: ActionKind, event: Event | None = None, **kw: Any) -> Action:
    event = event or interview()
    base: dict[str, Any] = dict(
        kind=kind,
        account="main",
        occurrence_key=event.occurrence_key,
        recipients=(JANE,),
        slots=slots() if kind in (ActionKind.RESCHEDULE, ActionKind.MISSED, ActionKind.FOLLOW_UP) else (),
        recipient_timezone="America/New_York",
    )
    base.update(kw)
    return Action(**base)


def text_of_html(markup: str) -> str:
    plain = re.sub(r"<[^>]+>", " ", markup)
    return re.sub(r"\s+", " ", htmllib.unescape(plain)).strip()


# Words that mark each reason's sentence, before (reschedule) and after (missed / follow-up).
AHEAD = {
    "scheduling_conflict": ("come up at that time", "a conflict at that time"),
    "illness": ("For health reasons",),
    "family_emergency": ("A family emergency means",),
    "current_job": ("at my current job",),
    "technical_problem": ("technical problem", "phone line"),
    "transport_delay": ("transport disruption",),
    "own_mistake": ("mistake in my planning",),
    "time_zone": ("I want to make sure I have the right time",),
}
PAST = {
    "scheduling_conflict": (),
    "illness": ("I was unwell",),
    "family_emergency": ("A family emergency kept me away",),
    "current_job": ("my current job kept me",),
    "technical_problem": ("technical problem kept me", "problem with my phone"),
    "transport_delay": ("transport delay kept me", "held up travelling"),
    "own_mistake": ("my own mistake",),
    "time_zone": (),  # only ever planned for a reschedule request; neutral elsewhere
}
ALL_REASON_WORDS = [w for words in (*AHEAD.values(), *PAST.values()) for w in words] + [
    "illness", "emergency", "current job", "unwell", "health"]
LEFTOVERS = ("[", "]", "{{", "}}", "{%", "%}", "{#", "TODO", "None", "Undefined", "<Company>", "XXX")
GREETINGS = ("Dear Jane,\n\n", "Hello Jane,\n\n")


def marks(words: tuple[str, ...], body: str) -> bool:
    return any(w in body for w in words)


@pytest.fixture(scope="module")
def html_renderer() -> Renderer:
    return Renderer(make_config(html="true"))


# ---- every kind × every reason ------------------------------------------------------------------


@pytest.mark.parametrize("reason", [*REASONS, TIME_ZONE_REASON])
@pytest.mark.parametrize("kind", list(ActionKind))
def test_every_kind_and_reason_renders_cleanly(html_renderer: Renderer, kind: ActionKind, reason: str) -> None:
    draft = html_renderer.render(action(kind, reason=reason), interview(), now=NOW)
    for part in (draft.subject, draft.text, draft.html or ""):
        for bad in LEFTOVERS:
            assert bad not in part, f"{bad!r} left in {kind.value}/{reason}"
    assert draft.text.startswith(GREETINGS)
    assert draft.text.endswith("Kind regards,\nAlex Candidate\n+44 7700 900123\nPortfolio: https://alex.example.org\n")
    assert "\r" not in draft.text and "\n\n\n" not in draft.text and "  " not in draft.text
    assert "\n" not in draft.subject and draft.subject.strip() == draft.subject and draft.subject
    body = draft.text
    if kind is ActionKind.RESCHEDULE:
        assert marks(AHEAD[reason], body)
        assert sum(marks(words, body) for words in AHEAD.values()) == 1  # the given reason only
    elif kind in (ActionKind.MISSED, ActionKind.FOLLOW_UP):
        expected = PAST[reason]
        if not expected:  # neutral: no reason sentence at all
            assert not any(marks(words, body) for words in PAST.values())
            assert "conflict" not in body
        else:
            assert marks(expected, body)
            assert sum(marks(words, body) for words in PAST.values() if words) == 1
    else:
        assert not any(w in body for w in ALL_REASON_WORDS), "thank-you/join-info give no reason"
    # The HTML twin says the same thing as the text.
    assert draft.html is not None
    flat_html = text_of_html(draft.html)
    for line in body.splitlines():
        line = line.removeprefix("- ").strip()
        if line:
            assert line in flat_html, f"{line!r} missing from the HTML twin"


def test_etiquette_of_each_kind(html_renderer: Renderer) -> None:
    r = html_renderer
    text = r.render(action(ActionKind.RESCHEDULE), interview(), now=NOW).text
    assert "our technical interview on Tuesday 10 March, 10:00–11:00 EDT (14:00–15:00 GMT for me)" in text
    assert "flexibility" not in text  # thanks for flexibility only once they have shown it
    assert "I am writing" not in text and "If you would rather not" not in text

    missed = r.render(action(ActionKind.MISSED, reason="own_mistake"), interview(), now=START + timedelta(minutes=15)).text
    assert "I'm very sorry that I missed our technical interview at 10:00 EDT this morning." in missed
    assert "Are you still free now, or would you prefer to find another time?" in missed
    later = r.render(action(ActionKind.MISSED), interview(), now=START + timedelta(hours=5))
    assert "still free" not in later.text and "still free" not in (later.html or "")
    assert "another time" in later.text or "reschedule" in later.text
    assert "call" not in missed.lower() and "+1 212 555 0100" not in missed  # the call-first note is the user's

    follow = r.render(action(ActionKind.FOLLOW_UP, case=CaseFacts(follows_miss=True, apology_sent=True)), interview(),
                      now=START + timedelta(days=1)).text
    assert "missing our technical interview on Tuesday 10 March" in follow
    assert "once more" in follow or "again" in follow
    assert "responsib" in follow.lower() and "any of these times" in follow
    # no apology was sent yet: not "once more"
    first = r.render(action(ActionKind.FOLLOW_UP, case=CaseFacts(follows_miss=True)), interview(),
                     now=START + timedelta(days=1)).text
    assert "once more" not in first and ("in writing" in first or "sorry again" in first)
    # rebooked meanwhile: it confirms the new time and offers no slots
    new_time = START + timedelta(days=3)
    rebooked = CaseFacts(follows_miss=True, apology_sent=True, rebooked=Slot(new_time, new_time + timedelta(hours=1)))
    fitted = r.render(action(ActionKind.FOLLOW_UP, slots=(), case=rebooked), interview(), now=START + timedelta(days=1))
    for part in (fitted.text, text_of_html(fitted.html or "")):
        assert "Thank you for agreeing to meet again on Friday 13 March, 10:00–11:00 EDT" in part
        assert "still open to meeting" not in part and "any of these times" not in part
    # the interview moved since the miss: the apology names the day that was missed
    before = Slot(START - timedelta(days=2), START - timedelta(days=2, hours=-1))
    moved_on = r.render(action(ActionKind.FOLLOW_UP, case=CaseFacts(follows_miss=True, original=before)), interview(),
                        now=START + timedelta(days=1))
    assert "missing our technical interview on Sunday 8 March" in moved_on.text and "8 March" in moved_on.subject

    moved = interview(start=START + timedelta(days=7), end=START + timedelta(days=7, hours=1))
    thanks = r.render(action(ActionKind.THANK_YOU, moved), moved, now=NOW).text
    assert "Tuesday 17 March, 10:00–11:00 EDT (14:00–15:00 GMT for me)" in thanks
    assert "flexibility" in thanks and "missed" not in thanks
    original = Slot(START, START + timedelta(hours=1))
    after_miss = r.render(action(ActionKind.THANK_YOU, moved, case=CaseFacts(follows_miss=True, apology_sent=True,
                                                                            original=original)), moved, now=NOW).text
    assert "after I missed our technical interview on Tuesday 10 March; I'm sorry again for that" in after_miss
    unsent = r.render(action(ActionKind.THANK_YOU, moved, case=CaseFacts(follows_miss=True, original=original)), moved,
                      now=NOW).text
    assert "I'm sorry I missed it" in unsent and "again" not in unsent

    join = r.render(action(ActionKind.JOIN_INFO), interview(), now=NOW).text
    assert "our technical interview on Tuesday 10 March" in join
    assert len(join.split()) < 90  # short


def test_short_notice_is_acknowledged_only_within_24_hours() -> None:
    r = Renderer(make_config())
    soon = r.render(action(ActionKind.RESCHEDULE), interview(), now=START - timedelta(hours=23)).text
    assert "sorry for the late notice" in soon and "as early as" not in soon and "as much notice" not in soon
    later = r.render(action(ActionKind.RESCHEDULE), interview(), now=START - timedelta(hours=25)).text
    # past 24 hours the wording does not change with the clock (an untouched draft is not rewritten for it)
    ample = r.render(action(ActionKind.RESCHEDULE), interview(), now=START - timedelta(days=4)).text
    assert later == ample and "late notice" not in later
    assert "as early as I could" in ample or "as much notice" in ample


def test_clock_is_used_when_now_is_not_given() -> None:
    r = Renderer(make_config(), clock=lambda: START - timedelta(hours=2))
    assert "late notice" in r.render(action(ActionKind.RESCHEDULE), interview()).text


# ---- subjects, greeting, sender -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "subjects"),
    [
        (ActionKind.RESCHEDULE, ("Rescheduling our technical interview on Tuesday 10 March",
                                 "Could we move our technical interview on Tuesday 10 March?",
                                 "A new time for our technical interview on Tuesday 10 March?")),
        (ActionKind.MISSED, ("Apologies — our technical interview on Tuesday 10 March",
                             "I'm sorry about our technical interview on Tuesday 10 March")),
        (ActionKind.FOLLOW_UP, ("Following up on our technical interview on Tuesday 10 March",
                                "My apologies again for our technical interview on Tuesday 10 March")),
        (ActionKind.THANK_YOU, ("Thank you — confirming our technical interview on Tuesday 10 March",
                                "Confirming our technical interview on Tuesday 10 March, with thanks")),
        (ActionKind.JOIN_INFO, ("How we will meet on Tuesday 10 March",)),
    ],
)
def test_subjects(kind: ActionKind, subjects: tuple[str, ...]) -> None:
    r = Renderer(make_config())
    assert r.render(action(kind), interview(), now=NOW).subject in subjects


def test_subjects_a_person_writes() -> None:
    r = Renderer(make_config())
    event = interview(title="Panel interview - Globex")
    seen = {r.render(action(ActionKind.RESCHEDULE, event, occurrence_key=f"k{i}"), event, now=NOW).subject
            for i in range(12)}
    assert seen == {"Rescheduling our panel interview on Tuesday 10 March",
                    "Could we move our panel interview on Tuesday 10 March?",
                    "A new time for our panel interview on Tuesday 10 March?"}
    soon = r.render(action(ActionKind.MISSED, event), event, now=START + timedelta(hours=1)).subject
    assert soon in ("Apologies — our panel interview this morning", "I'm sorry about our panel interview this morning")
    # a time-zone check asks, rather than announcing a move
    tz = r.render(action(ActionKind.RESCHEDULE, event, reason="time_zone"), event, now=NOW).subject
    assert tz == "Checking the time of our panel interview on Tuesday 10 March"


def test_subject_without_title_or_for_private_event_uses_the_day() -> None:
    r = Renderer(make_config())
    for event in (interview(title="   "), interview(is_private=True)):
        draft = r.render(action(ActionKind.RESCHEDULE, event), event, now=NOW)
        assert draft.subject.endswith(("our interview on Tuesday 10 March", "our interview on Tuesday 10 March?"))


@pytest.mark.parametrize(
    ("recipients", "greetings"),
    [
        ((JANE,), ("Dear Jane,", "Hello Jane,")),
        ((person("priya.shah@hooli.example", "Shah, Priya"),), ("Dear Priya,", "Hello Priya,")),
        ((person("p@hooli.example", "Dr. Priya Shah (Hooli)"),), ("Dear Priya,", "Hello Priya,")),
        ((person("priya.shah@hooli.example"),), ("Dear Priya,", "Hello Priya,")),
        ((person("hr@acme.example"),), ("Hello Acme team,",)),
        ((person("hr@acme.example", "hr@acme.example"),), ("Hello Acme team,",)),
        ((person("talent@globex.example", "Globex Talent"),), ("Hello Globex team,",)),
        ((person("x7@acme.example"),), ("Hello,",)),
        ((), ("Hello,",)),
        ((JANE, person("bob@acme.example", "Bob Roe")), ("Dear Jane and Bob,", "Hello Jane and Bob,")),
        ((JANE, person("b@acme.example", "Bob"), person("c@acme.example", "Cy")),
         ("Dear Jane, Bob and Cy,", "Hello Jane, Bob and Cy,")),
    ],
)
def test_greeting(recipients: tuple[Person, ...], greetings: tuple[str, ...]) -> None:
    draft = Renderer(make_config()).render(action(ActionKind.THANK_YOU, recipients=recipients), interview(), now=NOW)
    assert draft.text.splitlines()[0] in greetings
    assert [a.email for a in draft.to] == [p.email for p in recipients]


def test_sender_and_recipients() -> None:
    r = Renderer(make_config())
    draft = r.render(action(ActionKind.THANK_YOU), interview(), now=NOW)
    assert (draft.sender.email, draft.sender.name) == ("alex@example.org", "Alex Candidate")
    assert [(a.email, a.name) for a in draft.to] == [("jane.doe@acme.example", "Jane Doe")]
    assert draft.key == action(ActionKind.THANK_YOU).key
    assert draft.occurrence_key == interview().occurrence_key
    work = r.render(action(ActionKind.THANK_YOU, account="work"), interview(account="work"), now=NOW)
    assert work.sender.email == "alex@work.example"
    unknown = r.render(action(ActionKind.THANK_YOU, account="gone"), interview(), now=NOW)
    assert unknown.sender.email == "alex@example.org"


def test_no_phone_or_signature_configured() -> None:
    config = parse_config("user: {name: Alex, email: alex@example.org, timezone: UTC}")
    text = Renderer(config).render(action(ActionKind.THANK_YOU), interview(), now=NOW).text
    assert text.endswith("\n\nKind regards,\nAlex\n"), text


def test_unknown_reason_is_a_clear_error() -> None:
    with pytest.raises(RenderError, match="unknown reason 'went to a concert'.*illness"):
        Renderer(make_config()).render(action(ActionKind.RESCHEDULE, reason="went to a concert"), interview(), now=NOW)


# ---- times and zones ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc_start", "line"),
    [
        # Before 8 March 2026 both on standard time: 5 h apart.
        (datetime(2026, 3, 4, 14, 0, tzinfo=UTC), "Wednesday 4 March, 09:00–10:00 EST (14:00–15:00 GMT for me)"),
        # 8–29 March: New York on EDT, London still on GMT: 4 h apart.
        (datetime(2026, 3, 10, 14, 0, tzinfo=UTC), "Tuesday 10 March, 10:00–11:00 EDT (14:00–15:00 GMT for me)"),
        # After 29 March both on summer time: 5 h apart again.
        (datetime(2026, 3, 31, 14, 0, tzinfo=UTC), "Tuesday 31 March, 10:00–11:00 EDT (15:00–16:00 BST for me)"),
        # Autumn: London back on GMT on 25 October, New York not until 1 November: 4 h apart.
        (datetime(2026, 10, 27, 13, 0, tzinfo=UTC), "Tuesday 27 October, 09:00–10:00 EDT (13:00–14:00 GMT for me)"),
    ],
)
def test_slots_in_both_zones_across_dst(utc_start: datetime, line: str) -> None:
    slot = (Slot(utc_start, utc_start + timedelta(hours=1)),)
    text = Renderer(make_config()).render(action(ActionKind.RESCHEDULE, slots=slot), interview(), now=NOW).text
    assert f"\n- {line}\n" in text


def test_slot_list_has_every_slot_in_order() -> None:
    three = slots()
    text = Renderer(make_config()).render(action(ActionKind.RESCHEDULE, slots=three), interview(), now=NOW).text
    bullets = [line for line in text.splitlines() if line.startswith("- ")]
    assert bullets == [
        "- Wednesday 11 March, 10:00–11:00 EDT (14:00–15:00 GMT for me)",
        "- Thursday 12 March, 10:00–11:00 EDT (14:00–15:00 GMT for me)",
        "- Friday 13 March, 10:00–11:00 EDT (14:00–15:00 GMT for me)",
    ]


def test_zone_display_variants() -> None:
    r = Renderer(make_config())
    one = (Slot(START, START + timedelta(minutes=45)),)

    def bullet(**kw: Any) -> str:
        text = r.render(action(ActionKind.RESCHEDULE, slots=one, **kw), interview(), now=NOW).text
        return next(line for line in text.splitlines() if line.startswith("- "))

    assert bullet(recipient_timezone=None) == "- Tuesday 10 March, 14:00–14:45 GMT"
    assert bullet(recipient_timezone="Europe/London") == "- Tuesday 10 March, 14:00–14:45 GMT"
    assert bullet(recipient_timezone="Not/AZone") == "- Tuesday 10 March, 14:00–14:45 GMT"
    # Windows zone names (Graph) are understood.
    assert bullet(recipient_timezone="Eastern Standard Time") == "- Tuesday 10 March, 10:00–10:45 EDT (14:00–14:45 GMT for me)"
    # A different day for the user repeats the day.
    assert bullet(recipient_timezone="Pacific/Auckland") == (
        "- Wednesday 11 March, 03:00–03:45 NZDT (Tuesday 10 March, 14:00–14:45 GMT for me)"
    )
    # A zone without an abbreviation gets a UTC offset instead of "+0530".
    assert bullet(recipient_timezone="Asia/Kolkata") == "- Tuesday 10 March, 19:30–20:15 IST (14:00–14:45 GMT for me)"
    assert bullet(recipient_timezone="America/Sao_Paulo") == "- Tuesday 10 March, 11:00–11:45 UTC-3 (14:00–14:45 GMT for me)"


def test_zone_label_offsets() -> None:
    assert zone_label(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))) == "UTC+5:30"
    assert zone_label(datetime(2026, 1, 1, tzinfo=UTC)) == "UTC"
    assert zone_label(datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Dubai"))) == "UTC+4"


def test_slot_across_a_dst_change_and_midnight() -> None:
    # 29 March 2026 00:30–01:30 UTC is 00:30 GMT to 02:30 BST in London (one real hour).
    s = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    slot = (Slot(s, s + timedelta(hours=1)),)
    text = Renderer(make_config()).render(action(ActionKind.RESCHEDULE, slots=slot, recipient_timezone=None),
                                          interview(), now=NOW).text
    assert "- Sunday 29 March, 00:30 GMT – 02:30 BST\n" in text
    late = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    text = Renderer(make_config()).render(
        action(ActionKind.RESCHEDULE, slots=(Slot(late, late + timedelta(hours=1)),), recipient_timezone=None),
        interview(), now=NOW).text
    assert "- Tuesday 10 March, 23:30 GMT – Wednesday 11 March, 00:30 GMT\n" in text


def test_all_day_interview_shows_dates_only() -> None:
    event = interview(start=date(2026, 3, 10), end=date(2026, 3, 11))
    r = Renderer(make_config(html="true"))
    for kind in ActionKind:
        draft = r.render(action(kind, event, slots=()), event, now=NOW)
        first = draft.text.split("\n\n")[1]
        assert "Tuesday 10 March" in first
        assert not re.search(r"\d\d:\d\d", first), first
        assert "GMT" not in first and "EDT" not in first
    multi = interview(start=date(2026, 3, 10), end=date(2026, 3, 12))
    text = r.render(action(ActionKind.THANK_YOU, multi), multi, now=NOW).text
    assert "Tuesday 10 March to Wednesday 11 March" in text


def test_all_day_short_notice_uses_the_users_midnight() -> None:
    event = interview(start=date(2026, 3, 10), end=date(2026, 3, 11))
    r = Renderer(make_config())
    soon = datetime(2026, 3, 9, 12, 0, tzinfo=LONDON)
    assert "late notice" in r.render(action(ActionKind.RESCHEDULE, event), event, now=soon).text


def test_no_slots_offers_to_fit_their_schedule() -> None:
    r = Renderer(make_config())
    for kind in (ActionKind.RESCHEDULE, ActionKind.MISSED, ActionKind.FOLLOW_UP):
        text = r.render(action(kind, slots=()), interview(), now=NOW).text
        assert "fit around" in text
        assert "any of these" not in text and "\n- " not in text


# ---- threading ----------------------------------------------------------------------------------


def test_thread_gives_re_subject_and_reply_headers() -> None:
    thread = ThreadInfo(thread_id="t-42", message_id="<invite-1@acme.example>",
                        references=("<root@acme.example>",), subject="Invitation: Technical interview")
    draft = Renderer(make_config()).render(action(ActionKind.RESCHEDULE), interview(), thread=thread, now=NOW)
    assert draft.subject == "Re: Invitation: Technical interview"
    assert draft.in_reply_to == "<invite-1@acme.example>"
    assert draft.references == ("<root@acme.example>", "<invite-1@acme.example>")
    assert draft.thread_id == "t-42"
    parsed = parse_message(build_message(draft).as_bytes())
    assert parsed["In-Reply-To"] == "<invite-1@acme.example>"
    assert parsed["References"].split() == ["<root@acme.example>", "<invite-1@acme.example>"]
    assert parsed["Subject"] == "Re: Invitation: Technical interview"


def test_thread_subject_already_a_reply_and_thread_without_subject() -> None:
    r = Renderer(make_config())
    already = ThreadInfo(message_id="<m@x>", subject="RE: Interview")
    assert r.render(action(ActionKind.THANK_YOU), interview(), thread=already, now=NOW).subject == "RE: Interview"
    bare = ThreadInfo(thread_id="t-1")
    draft = r.render(action(ActionKind.THANK_YOU), interview(), thread=bare, now=NOW)
    assert draft.subject.startswith(("Thank you", "Confirming"))
    assert draft.thread_id == "t-1" and draft.in_reply_to is None and draft.references == ()
    no_thread = r.render(action(ActionKind.THANK_YOU), interview(), now=NOW)
    assert no_thread.in_reply_to is None and no_thread.thread_id is None


# ---- HTML ---------------------------------------------------------------------------------------


def test_html_off_by_default_and_on_when_configured() -> None:
    off = Renderer(make_config()).render(action(ActionKind.RESCHEDULE), interview(), now=NOW)
    assert off.html is None
    assert build_message(off).get_content_type() == "text/plain"
    on = Renderer(make_config(html="true")).render(action(ActionKind.RESCHEDULE), interview(), now=NOW)
    assert on.html is not None
    assert on.html.count("<li>") == 3 and "<ul>" in on.html
    assert "<p>Dear Jane,</p>" in on.html or "<p>Hello Jane,</p>" in on.html
    msg = parse_message(build_message(on).as_bytes())
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(preferencelist=("html",)) is not None
    assert plain_body(msg).replace("\r\n", "\n") == on.text


# ---- hostile input ------------------------------------------------------------------------------


HOSTILE_TITLES = [
    "{{ config }}",
    "{{ 7*7 }}",
    "{% for x in range(3) %}loop{% endfor %}",
    "{{ ''.__class__.__mro__ }}",
    "<script>alert(1)</script> & <b>bold</b>",
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_titles_stay_literal(html_renderer: Renderer, title: str) -> None:
    event = interview(title=title)
    draft = html_renderer.render(action(ActionKind.RESCHEDULE, event), event, now=NOW)
    assert "our interview on Tuesday 10 March" in draft.subject  # a person's subject, not the title
    for part in (draft.subject, draft.text, draft.html or ""):
        assert "49" not in part and "looploop" not in part and "<script>" not in part


@pytest.mark.parametrize("name", ["{{ user }}", "{% raw %}x", "Tom & Jerry {#"])
def test_hostile_names_are_inert_in_text_and_escaped_in_html(html_renderer: Renderer, name: str) -> None:
    who = person("jane.doe@acme.example", name)
    draft = html_renderer.render(action(ActionKind.MISSED, recipients=(who,)), interview(), now=NOW)
    first = draft.text.splitlines()[0]
    assert first.startswith(("Dear ", "Hello ")) and first.endswith(",")
    salutation = first.split(" ", 1)[1].rstrip(",")
    assert salutation in (name.split()[0], "Jane")  # a first word, taken literally (or the address's)
    assert draft.html is not None
    assert f"<p>{htmllib.escape(first)}</p>" in draft.html
    assert "<img" not in draft.html


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(1)>", "Jordan <jordan@acme.example>",
                                  "=?utf-8?q?Jordan_=3Cboss=40acme.example=3E?="])
def test_names_that_look_like_markup_or_addresses_are_not_used(html_renderer: Renderer, name: str) -> None:
    who = person("attacker@evil.example", name)
    draft = html_renderer.render(action(ActionKind.MISSED, recipients=(who,)), interview(), now=NOW)
    assert draft.text.startswith("Hello,\n") and draft.to[0].name == ""
    assert draft.html is not None and "<img" not in draft.html and "acme" not in draft.html


def test_crlf_in_title_and_names_cannot_create_headers() -> None:
    evil_title = "Interview\r\nBcc: x@evil.example\r\n\r\nInjected body"
    evil_who = person("jane.doe@acme.example", "Jane\r\nBcc: y@evil.example")
    event = interview(title=evil_title)
    thread = ThreadInfo(message_id="<a@b>\r\nBcc: z@evil.example", subject="Invite\nBcc: w@evil.example")
    r = Renderer(make_config(html="true"))
    for th in (None, thread):
        draft = r.render(action(ActionKind.RESCHEDULE, event, recipients=(evil_who,)), event, thread=th, now=NOW)
        assert "\n" not in draft.subject and "\r" not in draft.subject
        raw = build_message(draft).as_bytes()
        parsed = parse_message(raw)
        assert parsed["Bcc"] is None
        assert b"\r\nBcc:" not in raw and b"\nBcc:" not in raw
        assert [a.addr_spec for a in parsed["To"].addresses] == ["jane.doe@acme.example"]
        assert "evil" not in str(parsed["To"]).split("<")[-1]
        assert "\r" not in draft.text and "Injected body" not in draft.text


def test_control_characters_in_names_are_removed_from_the_body() -> None:
    who = person("jane.doe@acme.example", "Jane\x00\x1b[31m Doe\u2028")
    text = Renderer(make_config()).render(action(ActionKind.THANK_YOU, recipients=(who,)), interview(), now=NOW).text
    assert "\x00" not in text and "\x1b" not in text and "\u2028" not in text
    assert text.startswith(("Dear Jane,\n", "Hello Jane,\n"))


# ---- forbidden content ------------------------------------------------------------------------------


FORBIDDEN = ("another interview", "other interview", "concert", "Coldplay", "Globex", "opening day",
             "Panel: Jane", "Internal note", "Acme HQ", "5th floor", "+1 212 555 0100", "call first", "evidence")


@pytest.mark.parametrize("other_title", ["Coldplay concert", "Final interview – Globex"])
def test_drafts_never_mention_the_conflicting_event(html_renderer: Renderer, other_title: str) -> None:
    """A clash scenario as the pipeline sees it: the risk, notes and explanation name the other event."""
    event = interview()
    other = Event(account="main", source_id="evt-2", title=other_title, start=START - timedelta(minutes=30),
                  end=START + timedelta(hours=2), location="Globex Tower", description="tickets: row 5")
    risk = Risk(RiskKind.INTERVIEW_CLASH if "interview" in other_title else RiskKind.DOUBLE_BOOKED,
                Severity.CRITICAL, event.occurrence_key, evidence=f"overlaps {other.title!r}",
                other_key=other.occurrence_key, other_is_interview="interview" in other_title)
    for kind in ActionKind:
        for reason in REASONS:
            act = action(kind, event, reason=reason, risks=(risk.kind,), call_first=True, phone="+1 212 555 0100",
                         notes=(f"Call Jane first: {other.title} clashes", risk.evidence),
                         explanation=(risk.evidence, f"other event: {other.title} at {other.location}"))
            draft = html_renderer.render(act, event, now=NOW)
            for part in (draft.subject, draft.text, draft.html or ""):
                lowered = part.lower()
                for word in FORBIDDEN:
                    assert word.lower() not in lowered, f"{word!r} in {kind.value}/{reason}"
                assert other.title.lower() not in lowered
                assert "row 5" not in lowered and "tower" not in lowered


# ---- overrides --------------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_override_folder_wins_and_builtins_fill_the_rest(tmp_path: Path) -> None:
    write(tmp_path, "thank_you.txt.j2", "Hi {{ greeting_name }}!\r\n\r\n\r\n\r\nSee you {{ interview.when.mine }}.\r\n")
    write(tmp_path, "thank_you.subject.j2", "Merci: {{ interview.title }}")
    config = make_config(templates_dir=str(tmp_path), html="true")
    assert template_problems(config) == []
    r = Renderer(config)
    draft = r.render(action(ActionKind.THANK_YOU), interview(), now=NOW)
    assert draft.text == "Hi Jane!\n\nSee you Tuesday 10 March, 14:00–15:00 GMT.\n"
    assert draft.subject == "Merci: Technical interview – Acme"
    # the built-in twin lays out the overridden text, so the two parts agree
    assert draft.html is not None and "<p>Hi Jane!</p>" in draft.html and "See you Tuesday 10 March" in draft.html
    other = r.render(action(ActionKind.RESCHEDULE), interview(), now=NOW)
    assert "our technical interview" in other.subject


def test_overriding_the_shared_macros_changes_every_draft(tmp_path: Path) -> None:
    builtin = (Path(__file__).parents[1] / "templates" / "_macros.j2").read_text(encoding="utf-8")
    write(tmp_path, "_macros.j2", builtin.replace("Kind regards,", "Best wishes,"))
    r = Renderer(make_config(templates_dir=str(tmp_path)))
    for kind in ActionKind:
        text = r.render(action(kind), interview(), now=NOW).text
        assert "\nBest wishes,\nAlex Candidate\n" in text and "Kind regards" not in text


def test_broken_override_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "reschedule_request.txt.j2", "Hello\n\n{% if slots %}\nno end\n")
    problems = template_problems(make_config(templates_dir=str(tmp_path)))
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4: syntax error")
    with pytest.raises(RenderError, match="reschedule_request.txt.j2"):
        Renderer(make_config(templates_dir=str(tmp_path))).render(action(ActionKind.RESCHEDULE), interview(), now=NOW)


def test_misspelt_variable_in_override_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "ask_join_info.txt.j2", "Hello,\n\nSee you {{ interview.wen.mine }}.\n")
    problems = template_problems(make_config(templates_dir=str(tmp_path)))
    assert problems and all(str(path) in p for p in problems)
    assert f"{path}:3:" in problems[0] and "wen" in problems[0]


def test_override_problems_folder_missing_unknown_name_not_utf8(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert template_problems(make_config(templates_dir=str(missing))) == [
        f"drafts.templates_dir: {missing} does not exist"
    ]
    a_file = write(tmp_path, "file.txt", "x")
    assert template_problems(make_config(templates_dir=str(a_file))) == [
        f"drafts.templates_dir: {a_file} is not a folder"
    ]
    folder = tmp_path / "t"
    folder.mkdir()
    typo = write(folder, "reschedule.txt.j2", "x")
    write(folder, "_helpers.j2", "{% macro x() %}x{% endmacro %}")
    problems = template_problems(make_config(templates_dir=str(folder)))
    assert len(problems) == 1 and problems[0].startswith(f"{typo}: not a template name")
    (folder / "thank_you.txt.j2").write_bytes(b"\xff\xfe bad")
    assert any("thank_you.txt.j2: not UTF-8 text" in p for p in template_problems(make_config(templates_dir=str(folder))))


def test_missing_override_folder_still_renders_builtins(tmp_path: Path) -> None:
    r = Renderer(make_config(templates_dir=str(tmp_path / "absent")))
    assert r.render(action(ActionKind.THANK_YOU), interview(), now=NOW).text.startswith(GREETINGS)


def test_builtin_templates_have_no_problems() -> None:
    assert template_problems(make_config()) == []


def test_override_templates_run_in_a_sandbox(tmp_path: Path) -> None:
    write(tmp_path, "thank_you.txt.j2", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(RenderError, match="thank_you.txt.j2"):
        Renderer(make_config(templates_dir=str(tmp_path))).render(action(ActionKind.THANK_YOU), interview(), now=NOW)
    problems = template_problems(make_config(templates_dir=str(tmp_path)))
    assert problems and "SecurityError" in problems[0]


def test_rendering_is_deterministic_for_fingerprints() -> None:
    r = Renderer(make_config(html="true"))
    a = action(ActionKind.MISSED)
    assert r.render(a, interview(), now=NOW) == r.render(a, interview(), now=NOW)
    moved = interview(start=START + timedelta(hours=1), end=START + timedelta(hours=2))
    assert r.render(a, moved, now=NOW).text != r.render(a, interview(), now=NOW).text


def test_slots_keep_their_order_even_when_replaced() -> None:
    r = Renderer(make_config())
    a = action(ActionKind.RESCHEDULE)
    reversed_slots = replace(a, slots=tuple(reversed(a.slots)))
    bullets = [line for line in r.render(reversed_slots, interview(), now=NOW).text.splitlines() if line.startswith("- ")]
    assert bullets[0].startswith("- Friday 13 March")


@pytest.mark.parametrize(
    ("title", "noun"),
    [
        ("Interview: Senior Engineer (Contoso)", "our interview"),
        ("interview - Acme", "our interview"),
        ("Phone screen - Hooli", "our phone screen"),
        ("Technical interview - Acme", "our technical interview"),
        ("Final round interview - Initech", "our final interview"),
        ("Recruiter call - Pied Piper", "our call"),
    ],
)
def test_subjects_do_not_repeat_the_calendar_title(title: str, noun: str) -> None:
    draft = Renderer(make_config()).render(action(ActionKind.RESCHEDULE), interview(title=title), now=NOW)
    assert noun + " on Tuesday 10 March" in draft.subject
    assert title not in draft.subject
