"""Advice to the user (never the recipient) on the reason behind a clash. Pure.

The second article's "consider your reason": another interview or a leisure event is not a reason
to cite, and is better moved than the interview; a commitment at the current job, illness or a
family emergency are reasons most interviewers accept, shared briefly. The advice goes into the
action's notes (CLI, status, the draft's review note); a draft never names the other event, and its
reason is only ever the one the user gave (or the neutral default).
"""

from __future__ import annotations

import re

from daemon.core.detect import title_text
from daemon.core.model import Event

ACCEPTED_REASONS = ("illness", "family_emergency", "current_job")

# word in the other event's title or categories → how the advice names it
_LEISURE = (
    ("concert", "concert"), ("gig", "gig"), ("festival", "festival"), ("opera", "opera"), ("ballet", "ballet"),
    ("theatre", "theatre visit"), ("theater", "theater visit"), ("cinema", "cinema trip"), ("movie", "film"),
    ("match", "match"), ("game", "game"), ("opening day", "opening day"), ("football", "football match"),
    ("party", "party"), ("birthday", "birthday"), ("dinner", "dinner"), ("drinks", "drinks"), ("brunch", "brunch"),
    ("lunch with", "lunch"), ("holiday", "holiday"), ("vacation", "vacation"), ("trip", "trip"),
    ("tickets", "ticketed event"), ("golf", "golf game"), ("tennis", "tennis game"), ("gym", "gym session"),
    ("yoga", "yoga class"), ("show", "show"), ("pub", "pub evening"), ("barbecue", "barbecue"), ("bbq", "barbecue"),
)
_HEALTH = ("doctor", "dentist", "dental", "gp", "hospital", "clinic", "physio", "therapy", "therapist",
           "vaccination", "surgery", "check-up", "checkup", "optician", "medical")
_FAMILY = ("school", "nursery", "childcare", "daycare", "kids", "pick up", "pick-up", "parents", "family")
_WORK = ("meeting", "planning", "sync", "standup", "stand-up", "1:1", "one-to-one", "review", "workshop",
         "client", "offsite", "all-hands", "all hands", "retro", "sprint", "shift", "on call", "on-call",
         "demo", "board", "presentation", "training", "deadline", "work")


def _has(words: tuple[str, ...] | list[str], text: str) -> str | None:
    for word in words:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text):
            return word
    return None


def clash_kind(other: Event, other_is_interview: bool) -> tuple[str, str]:
    """(category, noun) of the event an interview clashes with: interview, leisure, health, family, work or other."""
    if other_is_interview:
        return "interview", "another interview"
    text = " ".join((other.title or "", *other.categories)).casefold()
    for word, noun in _LEISURE:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text):
            return "leisure", noun
    if _has(_HEALTH, text):
        return "health", "health appointment"
    if _has(_FAMILY, text):
        return "family", "family commitment"
    people = [p for p in (other.organizer, *other.attendees) if p is not None and not p.is_self and not p.is_resource]
    if _has(_WORK, text) or people:
        return "work", "work commitment"
    return "other", "other commitment"


def clash_advice(other: Event | None, other_is_interview: bool, reason: str, given: bool) -> str | None:
    """One line for the user about the clash behind a draft, or None when there is nothing to say."""
    if reason in ACCEPTED_REASONS and given:
        return (f"Your reason ({reason.replace('_', ' ')}) is one interviewers accept: the draft shares it "
                "briefly, with no detail.")
    if other is None:
        return None
    category, noun = clash_kind(other, other_is_interview)
    what = title_text(other)
    if category == "interview":
        return (f"This clash is with another interview ({what}): never cite it as the reason (you never know who "
                "knows whom); the draft gives no detail. Consider which of the two to keep.")
    if category == "leisure":
        return (f"This clash is with a {noun} ({what}): interviewers rarely forgive that; consider moving the "
                f"{noun} instead. The draft does not mention it.")
    if category == "health":
        return (f"This clash is with a {noun} ({what}): a routine appointment is usually easier to move than an "
                "interview; if you are unwell, illness is a reason interviewers accept, shared briefly.")
    if category == "family":
        return (f"This clash is with a {noun} ({what}): a family emergency is a reason interviewers accept, "
                "shared briefly; a routine family plan is better moved than the interview.")
    if category == "work":
        return (f"This clash is with work ({what}): a commitment at your current job is a reason interviewers "
                "accept, shared briefly" + ("" if reason == "current_job" else
                                           " (say so with the reason current_job, or edit the draft)") + ".")
    return None
