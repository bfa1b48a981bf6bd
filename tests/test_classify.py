"""Classification: keywords in many languages, hiring domains, weak and negative rules, overrides."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from core_helpers import ME, UTC, at, attendee, event, interview, make_config, meeting

from daemon.core.classify import DEFAULT_WEIGHTS, classify, classify_all
from daemon.core.model import EventType, Response, ShowAs, person

START = at("2026-11-25 14:00")
CONFIG = make_config()


def score_of(title: str, **fields: object) -> tuple[bool, float, tuple[str, ...]]:
    c = classify(event(title, START, **fields), CONFIG)  # type: ignore[arg-type]
    return c.is_interview, c.score, c.reasons


@pytest.mark.parametrize(
    "title",
    [
        "Interview - Acme",
        "Phone screen with Hooli",
        "PHONE-SCREEN: Hooli",
        "Technical screen",
        "Tech interview round 2",
        "Hiring manager chat",
        "Final round - Initech",
        "Recruiter call: Pied Piper",
        "Coding challenge review",
        "Case interview (McKinsey)",
        "Culture fit conversation",
        "Onsite interview at Stark",
        "Vorstellungsgespräch bei Siemens",
        "Bewerbungsgespräch",
        "Entretien d'embauche - Société Générale",
        "Entretien d’embauche",
        "Entrevista de trabajo",
        "Entrevista com a Natura",
        "Colloquio di lavoro",
        "Sollicitatiegesprek ING",
        "Rozmowa kwalifikacyjna - Allegro",
        "Intervju med Spotify",
        "一次面接 (Rakuten)",
        "面试 - 腾讯",
    ],
)
def test_interview_titles_in_many_languages(title: str) -> None:
    is_interview, score, reasons = score_of(title)
    assert is_interview, (title, reasons)
    assert score >= DEFAULT_WEIGHTS["title_keyword"]
    assert reasons[0].startswith("title mentions ")


@pytest.mark.parametrize(
    "title",
    [
        "Quarterly planning",
        "Product preview",  # contains 'view' but not the word interview
        "Reviews of Q3",
        "Interviewer training",  # the user interviewing others
        "Exit interview with HR",
        "User interviews synthesis",
        "Podcast interview recording",
        "Candidate debrief: J. Smith",
        "Dentist",
        "",
    ],
)
def test_ordinary_titles_are_not_interviews(title: str) -> None:
    is_interview, _, reasons = score_of(title)
    assert not is_interview, (title, reasons)


def test_reason_text_names_the_keyword_and_weight() -> None:
    _, score, reasons = score_of("Phone Screen - Hooli")
    assert reasons[0] == 'title mentions "phone screen" (+3.0)'
    assert score == 3.0
    assert reasons[-1] == "score 3.0 is at or above the threshold 3.0"


def test_body_keyword_is_weaker_than_title() -> None:
    plain = score_of("Chat with Acme", description="This is your first interview with us.")
    assert plain[1] == DEFAULT_WEIGHTS["body_keyword"] and not plain[0]
    assert any(r.startswith('description mentions "interview"') for r in plain[2])


def test_hiring_tool_domains_are_strong() -> None:
    organizer = person("scheduling@greenhouse.io", "Acme Recruiting")
    is_interview, _, reasons = score_of("Chat with Acme", organizer=organizer, attendees=(ME,))
    assert is_interview
    assert any("greenhouse.io, a hiring tool" in r for r in reasons)
    # a subdomain counts too, and so does an attendee
    ashby = (ME, attendee("noreply@mail.ashbyhq.com"))
    assert score_of("Chat with Acme", attendees=ashby)[0]


def test_configured_hiring_domain() -> None:
    config = make_config(classification={"hiring_domains": ["talent-agency.example"]})
    ev = event("Catch-up", START, organizer=person("kim@talent-agency.example"), attendees=(ME,))
    assert classify(ev, config).is_interview
    assert not classify(ev, CONFIG).is_interview


def test_hiring_tool_in_uid_or_text_is_moderate() -> None:
    c = classify(event("Panel - Globex", START, key="abc@ashbyhq.com"), CONFIG)
    assert any("created by ashbyhq.com" in r for r in c.reasons)
    c = classify(event("Chat", START, description="Scheduled via Greenhouse"), CONFIG)
    assert c.score == DEFAULT_WEIGHTS["hiring_tool"]


def test_external_organizer_is_weak_and_consumer_domains_do_not_count() -> None:
    work = score_of("Coffee", organizer=person("sam@startup.example"))
    assert not work[0] and work[1] == DEFAULT_WEIGHTS["external_organizer"]
    assert "organised from outside your domain (startup.example) (+0.5)" in work[2]
    gmail = score_of("Coffee", organizer=person("friend@gmail.com"))
    assert gmail[1] == 0.0
    colleague = score_of("Coffee", organizer=person("chris@example.com"))
    assert colleague[1] == 0.0


def test_hint_words_need_company() -> None:
    assert not score_of("Panel discussion")[0]
    supported = score_of(
        "Panel - Globex", organizer=person("talent@globex.example"), join_urls=("https://meet.google.com/x",)
    )
    assert supported[0], supported[2]


def test_prep_block_without_others_is_not_an_interview() -> None:
    assert not score_of("Interview prep: Acme Robotics")[0]
    assert not score_of("Prep for interview", attendees=(ME,), organizer=ME)[0]
    assert not score_of("Practice coding interview")[0]
    with_coach = score_of("Interview prep: Acme Robotics", attendees=(ME, attendee("coach@careers.example")))
    assert with_coach[0]


def test_declined_and_cancelled_are_not_interviews() -> None:
    assert not score_of("Interview - Acme", self_response=Response.DECLINED)[0]
    assert not score_of("Interview - Acme", cancelled=True)[0]


def test_declined_after_start_still_counts_so_the_miss_can_be_seen() -> None:
    late = START + timedelta(minutes=30)
    is_interview, _, reasons = score_of("Interview - Acme", self_response=Response.DECLINED, updated=late)
    assert is_interview
    assert any("declined it after it started" in r for r in reasons)


@pytest.mark.parametrize(
    ("event_type", "show_as"),
    [
        (EventType.OUT_OF_OFFICE, ShowAs.OUT_OF_OFFICE),
        (EventType.FOCUS_TIME, ShowAs.BUSY),
        (EventType.WORKING_LOCATION, ShowAs.FREE),
        (EventType.DEFAULT, ShowAs.OUT_OF_OFFICE),
    ],
)
def test_special_entries_are_not_interviews(event_type: EventType, show_as: ShowAs) -> None:
    assert not score_of("Interview day", event_type=event_type, show_as=show_as)[0]


def test_all_day_is_a_weak_negative() -> None:
    c = classify(event("Interview week", date(2026, 11, 25)), CONFIG)
    assert "all-day event (-1.5)" in c.reasons and not c.is_interview
    strong = event(
        "Interview - Acme", date(2026, 11, 25), organizer=person("talent@greenhouse.io"), attendees=(ME,)
    )
    assert classify(strong, CONFIG).is_interview


def test_weights_threshold_and_keywords_are_configurable() -> None:
    ev = event("Coffee", START, organizer=person("sam@startup.example"))
    assert classify(ev, make_config(classification={"weights": {"external_organizer": 3.0}})).is_interview
    assert classify(ev, make_config(classification={"threshold": 0.5})).is_interview
    quiet = make_config(classification={"weights": {"title_keyword": 0}})
    assert not classify(event("Interview - Acme", START), quiet).is_interview
    custom = make_config(classification={"keywords": ["Kennenlernen"], "negative_keywords": ["mock"]})
    assert classify(event("Kennenlernen mit Acme", START), custom).is_interview
    assert not classify(event("Mock interview with Sam", START), custom).is_interview


def test_include_and_exclude_force_the_result() -> None:
    config = make_config(classification={"include": ["coffee with dana", "uid-42"], "exclude": ["Hooli"]})
    assert classify(event("Coffee with Dana", START), config).is_interview
    assert classify(event("Lunch", START, key="uid-42"), config).is_interview
    out = classify(event("Phone screen - Hooli", START), config)
    assert not out.is_interview and "excluded by classification.exclude" in out.reasons[0]


def test_user_domain_and_aliases_are_not_external() -> None:
    config = make_config(user={"aliases": ["alex@personal.example"]})
    ev = event("Coffee", START, organizer=person("bo@personal.example"))
    assert classify(ev, config).score == 0.0


HOSTILE = [
    "x" * 200_000,
    "Interview" + "\x00\x1b[31m\u202e" * 100,
    "(((((((((((((((((((((((((((((((((((((a*)*)*)*)*)*)*)*)*)*)*b",
    "{{ 7*7 }} {% raw %} ${HOME} %s %n",
    "interview " * 10_000,
    "🙂" * 1000,
    "\ud800 lone surrogate interview",
    "<script>alert(1)</script> phone screen",
]


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_titles_do_not_break_anything(title: str) -> None:
    c = classify(event(title, START, description=title * 2), CONFIG)
    assert isinstance(c.is_interview, bool)
    assert all(len(r) < 300 for r in c.reasons)


def test_classify_all_keys_by_occurrence_and_is_deterministic() -> None:
    first = at("2026-11-23 09:00", "Europe/London")
    occurrences = [
        event("Team sync", first + timedelta(days=7 * i), key="sync-uid", series_id="sync-uid",
              recurrence_id=first + timedelta(days=7 * i))
        for i in range(3)
    ]
    evs = [*occurrences, interview(START), meeting(START)]
    result = classify_all(evs, CONFIG)
    assert len(result) == 5
    assert len({k for k in result if k.startswith("sync-uid@")}) == 3
    shuffled = evs[:]
    random.Random(7).shuffle(shuffled)
    assert classify_all(shuffled, CONFIG) == result
    assert classify_all(evs, CONFIG) == result


def test_interview_fixture_is_an_interview() -> None:
    c = classify(interview(at("2026-11-25 14:00", "UTC").astimezone(UTC)), CONFIG)
    assert c.is_interview and c.score >= 4.0
