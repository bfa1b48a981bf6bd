"""Every draft kind checked point by point against the two articles in shared/seeds/.

Article 1 (missed): contact at once, apologise, own it without excuses, share a valid reason
briefly, ask whether they are free now (only while the interview's window is open) or would
reschedule, accept a no, follow up by email whether or not they agreed, reassert interest.
Article 2 (ahead): as much notice as possible, honesty, a brief reason (never another interview or
a leisure event), thank them for their flexibility once they have shown it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from drafts_scenarios import MOMENTS, START, action, event, render, with_case
from drafts_scenarios import renderer as scenario_renderer

from daemon.config import REASONS, TIME_ZONE_REASON
from daemon.core.model import ActionKind, CaseFacts, Mode, Slot, person

ALL_REASONS = (*REASONS, TIME_ZONE_REASON)
MODES = (Mode.VIDEO, Mode.PHONE, Mode.ONSITE, Mode.UNKNOWN)
INTEREST = ("keen on the role", "interested in the role", "of interest to me", "interested in the company")
APOLOGY = ("sorry", "apologise", "apologies")
FORBIDDEN = ("another interview", "other interview", "concert", "game", "holiday", "vacation", "party",
             "festival", "match", "I am writing", "I'm writing", "rather not", "respect your decision",
             "understand if you", "your mistake", "you set up", "another time zone")
# Words that give away a mode that is not the interview's.
WRONG_FOR = {
    Mode.VIDEO: ("come in", "be there", "arriv", "get to you", "address", "phone line", "take the call"),
    Mode.PHONE: ("come in", "be there", "arriv", "get to you", "video", "join the call"),
    Mode.ONSITE: ("join the call", "take the call", "video", "phone line", "joining"),
    Mode.UNKNOWN: (),
}


def body_without_lists(text: str) -> str:
    """The prose: no slot lines, no signature."""
    prose = text.split("\nKind regards,")[0]
    return "\n".join(line for line in prose.splitlines() if not line.startswith("- "))


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+", text) if s.strip()]


# ---- what every kind must and must not do -------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reason", ALL_REASONS)
@pytest.mark.parametrize("kind", list(ActionKind))
def test_every_draft_follows_the_articles(kind: ActionKind, reason: str, mode: Mode) -> None:
    draft = render(kind, mode, reason)
    text, prose = draft.text, body_without_lists(draft.text)
    low = prose.lower()
    # concise: a hiring manager reads it in 20 seconds
    assert len(prose.split()) <= 110, (len(prose.split()), prose)
    assert not any(word.lower() in low for word in FORBIDDEN), prose
    assert not any(word in low for word in WRONG_FOR[mode]), (mode, prose)
    # thanks for flexibility only after they showed it
    assert ("flexib" in low) is (kind is ActionKind.THANK_YOU)
    if kind in (ActionKind.RESCHEDULE, ActionKind.MISSED, ActionKind.FOLLOW_UP):
        assert any(word in low for word in APOLOGY), prose  # apology
        assert any(word in low for word in INTEREST), prose  # interest reasserted
        # concrete times in both zones
        bullets = [line for line in text.splitlines() if line.startswith("- ")]
        assert len(bullets) == 3 and all("EST" in b and "GMT for me" in b for b in bullets), bullets
    if kind in (ActionKind.MISSED, ActionKind.FOLLOW_UP):
        # responsibility without excuses
        owned = ("responsib", "on me", "let you know in time")
        assert any(word in low for word in owned), prose
        assert "fault" not in low.replace("my fault", "")
    if kind in (ActionKind.THANK_YOU, ActionKind.JOIN_INFO):
        assert not any(w in low for w in ("unwell", "health", "emergency", "current job", "technical problem",
                                          "transport", "mistake", "conflict"))


@pytest.mark.parametrize("mode", MODES)
def test_the_reason_is_brief_honest_and_only_the_given_one(mode: Mode) -> None:
    ahead = {reason: body_without_lists(render(ActionKind.RESCHEDULE, mode, reason).text) for reason in REASONS}
    past = {reason: body_without_lists(render(ActionKind.MISSED, mode, reason).text) for reason in REASONS}
    # each reason's wording differs from every other's (no reason reads like another)
    assert len(set(ahead.values())) == len(REASONS) and len(set(past.values())) == len(REASONS) - 0
    assert "conflict" not in past["scheduling_conflict"].lower() and "come up" not in past["scheduling_conflict"]
    for reason, prose in past.items():
        # the missed draft: at most one sentence of reason, under 20 words
        words = {"illness": "unwell", "family_emergency": "family emergency", "current_job": "current job",
                 "technical_problem": "problem", "transport_delay": "travel" if mode in (Mode.VIDEO, Mode.PHONE)
                 else "transport", "own_mistake": "mistake"}
        if reason in words:
            said = [s for s in sentences(prose) if words[reason] in s.lower()]
            assert len(said) == 1 and len(said[0].split()) < 20, (reason, said)


def test_reasons_fit_the_mode() -> None:
    # the cases: a Zoom interview delayed by transport, an onsite one with a technical problem,
    # a phone screen missed through a transport delay
    video = body_without_lists(render(ActionKind.RESCHEDULE, Mode.VIDEO, "transport_delay").text)
    assert "travelling" in video and "be there" not in video
    onsite = body_without_lists(render(ActionKind.RESCHEDULE, Mode.ONSITE, "technical_problem").text)
    assert "join" not in onsite and "come in" in onsite
    phone = body_without_lists(render(ActionKind.MISSED, Mode.PHONE, "transport_delay").text)
    assert "could not take your call" in phone and "arriv" not in phone


# ---- the right question for the phase -----------------------------------------------------------

NOW_WORDS = ("right away", "right now", "still free now", "as soon as I arrive")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reason", REASONS)
def test_still_free_now_only_while_the_window_is_open_and_the_reason_allows(mode: Mode, reason: str) -> None:
    during = render(ActionKind.MISSED, mode, reason, now=START + timedelta(minutes=20)).text
    after = render(ActionKind.MISSED, mode, reason, now=START + timedelta(minutes=75)).text  # 60-minute slot
    allowed = reason not in ("illness", "family_emergency") and (mode is not Mode.ONSITE or reason == "transport_delay")
    assert any(w in during for w in NOW_WORDS) is allowed, (reason, mode, during)
    assert not any(w in after for w in NOW_WORDS)
    assert "reschedule" in after or "another time" in after
    # the case: 09:30–10:00 drafted at 10:30 never asks
    short = event(mode, end=START + timedelta(minutes=30))
    late = render(ActionKind.MISSED, mode, reason, ev=short, now=START + timedelta(minutes=60)).text
    assert not any(w in late for w in NOW_WORDS)
    assert "better" not in late  # "If another time suits you better…" (better than what?)


def test_reschedule_asks_to_move_and_offers_no_exit() -> None:
    for reason in REASONS:
        text = render(ActionKind.RESCHEDULE, Mode.VIDEO, reason).text
        assert "?" in text
        assert "rather not" not in text and "decision" not in text


@pytest.mark.parametrize("notice", [timedelta(hours=5), timedelta(hours=40), timedelta(days=6)])
def test_openings_vary_with_the_notice_left(notice: timedelta) -> None:
    text = render(ActionKind.RESCHEDULE, Mode.VIDEO, now=START - notice).text
    if notice < timedelta(hours=24):
        assert "late notice" in text and "can't make our technical interview today at 10:00 EST" in text
    else:
        assert "as early as I could" in text or "as much notice as possible" in text


def test_the_time_zone_variant_owns_the_question_and_offers_the_time_they_meant_first() -> None:
    draft = render(ActionKind.RESCHEDULE, Mode.VIDEO, "time_zone")
    text = draft.text
    assert "I want to make sure I have the right time" in text
    assert "another time zone" not in text and "you set" not in text
    # 17:00 GMT (the same clock time as the invitation's 12:00 EST… here the sample probable slot)
    meant = text.index("Did you perhaps mean 17:00 GMT, my time: Thursday 26 November, 12:00–13:00 EST for you?")
    assert meant < text.index("\n- ")  # proposed before the other times
    assert draft.subject.startswith("Checking the time of")


def test_the_umbrella_sample_proposes_11_00_pst() -> None:
    from zoneinfo import ZoneInfo

    la = ZoneInfo("America/Los_Angeles")
    start = START.replace(hour=3) + timedelta(days=1)  # 19:00 PST on Thursday = 03:00 GMT on Friday
    ev = event(Mode.VIDEO, start=start, timezone="America/Los_Angeles")
    meant = Slot(start.astimezone(la).replace(hour=11, day=26), start.astimezone(la).replace(hour=12, day=26))
    draft = render(ActionKind.RESCHEDULE, Mode.VIDEO, "time_zone", ev=ev, probable=meant,
                   recipient_timezone="America/Los_Angeles", now=start - timedelta(days=4))
    assert "Did you perhaps mean 19:00 GMT, my time: Thursday 26 November, 11:00–12:00 PST for you?" in draft.text


# ---- follow-up and thank-you --------------------------------------------------------------------


def test_follow_up_whether_or_not_they_agreed() -> None:
    rebooked = Slot(START + timedelta(days=3), START + timedelta(days=3, hours=1))
    base = action(ActionKind.FOLLOW_UP, Mode.VIDEO)
    renderer = scenario_renderer()
    ev = event(Mode.VIDEO)
    now = START + timedelta(days=1)
    unknown = renderer.render(base, ev, now=now).text
    agreed = renderer.render(with_case(base, rebooked=rebooked, agreed=True), ev, now=now).text
    declined = renderer.render(with_case(base, agreed=False), ev, now=now).text
    assert "still open to meeting" in unknown and "\n- " in unknown
    assert "Thank you for agreeing to meet again on Sunday 29 November" in agreed and "\n- " not in agreed
    assert "I understand your decision" in declined and "\n- " not in declined
    for text in (unknown, agreed, declined):
        assert "sorry" in text.lower() and "responsib" in text.lower()
    not_sent = renderer.render(with_case(base, apology_sent=False), ev, now=now).text
    assert "in writing" in not_sent or "again" in not_sent


def test_a_thank_you_after_a_miss_apologises_again_and_reasserts_interest() -> None:
    plain = render(ActionKind.THANK_YOU, Mode.VIDEO).text
    after_miss = render(ActionKind.THANK_YOU, Mode.VIDEO, case=CaseFacts(follows_miss=True)).text
    assert "flexibility" in plain and "sorry" not in plain.lower()
    assert "after I missed our technical interview" in after_miss and "I'm sorry I missed it" in after_miss
    again = render(ActionKind.THANK_YOU, Mode.VIDEO, case=CaseFacts(follows_miss=True, apology_sent=True)).text
    assert "I'm sorry again for that" in again
    assert "keen on the role" in after_miss
    assert "Thursday 26 November, 10:00–11:00 EST (15:00–16:00 GMT for me)" in plain


@pytest.mark.parametrize(
    ("mode", "asks", "never"),
    [
        (Mode.VIDEO, "video link", ("address", "number")),
        (Mode.PHONE, "which number I should call", ("link", "address")),
        (Mode.ONSITE, "the address", ("link", "number")),
        (Mode.UNKNOWN, "how we will meet", ()),
    ],
)
def test_join_info_asks_only_for_what_is_missing(mode: Mode, asks: str, never: tuple[str, ...]) -> None:
    text = body_without_lists(render(ActionKind.JOIN_INFO, mode).text)
    assert asks in text
    assert not any(word in text for word in never), text


# ---- no two employers get the same letter -------------------------------------------------------


def skeleton(text: str) -> str:
    """The wording alone: names, times and dates taken out."""
    text = re.sub(r"^(Dear|Hello) [^\n]*", "", text)
    text = re.sub(r"\b\w+day \d+ \w+|\d\d:\d\d[^\n(]*?(?=[.?:;)]|$)", "", text, flags=re.M)
    return re.sub(r"our [a-z ]*?(interview|screen|call)", "our X", text)


@pytest.mark.parametrize("kind", list(ActionKind))
def test_variants_differ_between_cases_and_stay_put_for_one(kind: ActionKind) -> None:
    renderer = scenario_renderer()
    texts = []
    for i in range(8):
        ev = event(Mode.VIDEO, source_id=f"employer-{i}")
        who = person(f"p{i}@employer{i}.example", f"Person{i} Lee")
        act = action(kind, Mode.VIDEO, ev=ev, recipients=(who,))
        now = START + MOMENTS[kind]
        first = renderer.render(act, ev, now=now).text
        assert renderer.render(act, ev, now=now).text == first  # deterministic per case
        texts.append(skeleton(first))
    assert len(set(texts)) >= 3, texts


def test_the_demo_drafts_do_not_look_alike(tmp_path: Path) -> None:
    from email import policy
    from email.parser import BytesParser

    from daemon.cli import main

    assert main(["demo", "--output", str(tmp_path)]) == 0
    bodies = {}
    for path in sorted((tmp_path / "drafts").glob("*.eml")):
        msg = BytesParser(policy=policy.default).parse(path.open("rb"))
        part = msg.get_body(preferencelist=("plain",))
        assert part is not None
        bodies[str(msg["Subject"])] = part.get_content()
    assert len(bodies) >= 6
    skeletons = [skeleton(b).split("\n\n")[1] for b in bodies.values()]  # the opening paragraphs
    assert len(set(skeletons)) == len(skeletons), skeletons
    subjects = list(bodies)
    assert len({re.sub(r" on \w+day.*| this \w+", "", s) for s in subjects}) >= 4, subjects
    greetings = {b.splitlines()[0] for b in bodies.values()}
    assert "Hello Globex team," in greetings and not any("Priya Shah" in g for g in greetings)


# ---- the same points in German (drafts.language: de) --------------------------------------------

DE_INTEREST = ("interessiert", "interessiere")
DE_APOLOGY = ("leid", "entschuldig")
DE_FORBIDDEN = ("anderes vorstellungsgespräch", "anderen termin bei", "konzert", "urlaub", "spiel", "party",
                "festival", "ich schreibe ihnen", "lieber nicht", "ihr fehler", "ihre entscheidung")
DE_WRONG_FOR = {
    Mode.VIDEO: ("zu ihnen kommen", "bei ihnen sein", "adresse", "anruf", "telefon"),
    Mode.PHONE: ("zu ihnen kommen", "bei ihnen sein", "video", "zuschalten"),
    Mode.ONSITE: ("zuschalten", "video", "telefon", "anruf"),
    Mode.UNKNOWN: (),
}
DE_NOW = ("sofort", "jetzt noch", "direkt nach meiner ankunft")


def de_prose(text: str) -> str:
    prose = text.split("\nMit freundlichen Grüßen")[0]
    return "\n".join(line for line in prose.splitlines() if not line.startswith("- "))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reason", ALL_REASONS)
@pytest.mark.parametrize("kind", list(ActionKind))
def test_every_german_draft_follows_the_articles(kind: ActionKind, reason: str, mode: Mode) -> None:
    draft = render(kind, mode, reason, language="de")
    text, prose = draft.text, de_prose(draft.text)
    low = prose.lower()
    # formal register: neutral salutation with the whole name, lower case after it, no comma after the close
    assert text.startswith("Guten Tag Jordan Lee,\n\n")
    assert text.split("\n\n")[1][0].islower(), text
    assert "\nMit freundlichen Grüßen\nAlex Morgan\n" in text and "Grüßen," not in text
    assert " du " not in f" {low} " and "dein" not in low
    assert len(prose.split()) <= 120, (len(prose.split()), prose)
    assert not any(word in low for word in DE_FORBIDDEN), prose
    assert not any(word in low for word in DE_WRONG_FOR[mode]), (mode, prose)
    assert ("flexibilität" in low) is (kind is ActionKind.THANK_YOU)
    assert "Uhr EST" in text
    assert ("Donnerstag, 26. November" in text) is (kind is not ActionKind.MISSED)  # missed: "heute Morgen um"
    if kind in (ActionKind.RESCHEDULE, ActionKind.MISSED, ActionKind.FOLLOW_UP):
        assert any(w in low for w in DE_APOLOGY), prose
        assert any(w in low for w in DE_INTEREST), prose
        bullets = [line for line in text.splitlines() if line.startswith("- ")]
        assert len(bullets) == 3 and all("Uhr EST (bei mir " in b and "Uhr GMT)" in b for b in bullets), bullets
        assert bullets[0] == "- Dienstag, 1. Dezember, 09:00–10:00 Uhr EST (bei mir 14:00–15:00 Uhr GMT)"
    if kind in (ActionKind.MISSED, ActionKind.FOLLOW_UP):
        assert any(w in low for w in ("verantwortung", "allein auf mich", "bescheid geben")), prose
    if kind in (ActionKind.THANK_YOU, ActionKind.JOIN_INFO):
        assert not any(w in low for w in ("krank", "gesundheit", "notfall", "arbeitgeber", "technisch", "verkehr",
                                          "fehler", "überschneidung", "dazwischen"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reason", REASONS)
def test_german_still_free_now_only_while_the_window_is_open(mode: Mode, reason: str) -> None:
    during = render(ActionKind.MISSED, mode, reason, language="de", now=START + timedelta(minutes=20)).text.lower()
    after = render(ActionKind.MISSED, mode, reason, language="de", now=START + timedelta(minutes=75)).text.lower()
    allowed = reason not in ("illness", "family_emergency") and (mode is not Mode.ONSITE or reason == "transport_delay")
    assert any(w in during for w in DE_NOW) is allowed, (reason, mode, during)
    assert not any(w in after for w in DE_NOW)
    assert "neuen termin" in after or "nachzuholen" in after


def test_german_reasons_differ_and_fit_the_mode() -> None:
    for mode in MODES:
        ahead = {de_prose(render(ActionKind.RESCHEDULE, mode, r, language="de").text) for r in REASONS}
        assert len(ahead) == len(REASONS)
    video = de_prose(render(ActionKind.RESCHEDULE, Mode.VIDEO, "transport_delay", language="de").text)
    assert "unterwegs" in video and "bei Ihnen sein" not in video
    onsite = de_prose(render(ActionKind.RESCHEDULE, Mode.ONSITE, "technical_problem", language="de").text)
    assert "Videoverbindung" not in onsite
    phone = de_prose(render(ActionKind.MISSED, Mode.PHONE, "transport_delay", language="de").text)
    assert "Anruf nicht annehmen" in phone


def test_german_time_zone_variant_and_join_info() -> None:
    tz = render(ActionKind.RESCHEDULE, Mode.VIDEO, "time_zone", language="de")
    assert tz.subject == "Rückfrage zur Uhrzeit: unser Fachgespräch am Donnerstag, 26. November"
    assert "ich möchte sichergehen, dass ich die richtige Uhrzeit" in tz.text
    assert tz.text.index("Meinten Sie vielleicht 17:00 Uhr GMT meiner Zeit") < tz.text.index("\n- ")
    asks = {Mode.VIDEO: "Link zur Videokonferenz", Mode.PHONE: "unter welcher Nummer", Mode.ONSITE: "die Adresse"}
    for mode, words in asks.items():
        text = de_prose(render(ActionKind.JOIN_INFO, mode, language="de").text)
        assert words in text
        assert sum(w in text for w in asks.values()) == 1


def test_german_greetings_for_teams_and_unknown_mailboxes() -> None:
    team = person("talent@globex.example", "Globex Talent")
    nobody = person("x7@acme.example")
    assert render(ActionKind.THANK_YOU, Mode.VIDEO, language="de", recipients=(team,)).text.startswith(
        "Sehr geehrtes Globex-Team,\n\n")
    assert render(ActionKind.THANK_YOU, Mode.VIDEO, language="de", recipients=(nobody,)).text.startswith(
        "Sehr geehrte Damen und Herren,\n\n")
