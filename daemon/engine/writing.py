"""The writer's facts about a draft: whom it greets, what the interview is called, how its day is
said, and a stable choice among sentence variants. Per language; no I/O.

Templates word the letter; this module gives them what a person would know before writing it:
the first name of the person they write to (or that it is a team mailbox), the kind of interview
("our phone screen"), whether it was "this morning", and a variant number that is the same every
time the same case is rendered but differs between cases, so two employers do not get the same
letter.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from babel.dates import format_date

from daemon.core.model import Person

LANGUAGES = ("en", "de")
_LOCALES = {"en": "en_GB", "de": "de_DE"}
_DAY_PATTERNS = {"en": "EEEE d MMMM", "de": "EEEE, d. MMMM"}
# German readers know the zone of Central Europe by its German abbreviation.
_ZONE_WORDS = {"de": {"CET": "MEZ", "CEST": "MESZ"}}

# ---- names ---------------------------------------------------------------------------------------

_TEAM_WORDS = frozenset(
    "talent recruiting recruitment recruiter recruiters careers career jobs job hr hiring people team "
    "acquisition interviews interview scheduling scheduler coordinator coordination staffing ta "
    "personal bewerbung bewerbungen karriere".split()
)
_NO_REPLY = ("noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply", "notifications",
             "notification", "mailer", "calendar", "invites", "invitations")
_TITLES = frozenset("mr mrs ms miss mx dr prof sir dame herr frau doctor".split())
# Domains of hiring tools and mail services: they do not name the employer.
_NOT_EMPLOYERS = ("greenhouse", "lever", "ashbyhq", "ashby", "workday", "myworkday", "smartrecruiters", "icims",
                  "goodtime", "calendly", "hirevue", "gmail", "googlemail", "outlook", "hotmail", "yahoo", "icloud",
                  "proton", "protonmail", "gmx", "web", "example")


@dataclass(frozen=True, slots=True)
class Addressee:
    """How to greet one recipient: a person by first name, a team by company, or neutrally."""

    kind: str  # "person", "team" or "unknown"
    first: str = ""
    full: str = ""
    company: str = ""


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text) if w]


def _title_case(word: str) -> str:
    return word if any(c.isupper() for c in word) else word[:1].upper() + word[1:]


def _company_from_domain(email: str) -> str:
    labels = email.rpartition("@")[2].casefold().split(".")
    if len(labels) < 2:
        return ""
    # the label before the public suffix (acme-robotics.example → acme-robotics; co.uk handled loosely)
    name = labels[-3] if len(labels) >= 3 and labels[-2] in ("co", "com", "org", "ac") else labels[-2]
    if name in _NOT_EMPLOYERS or not name.isascii():
        return ""
    return " ".join(_title_case(part) for part in name.split("-"))


def addressee(p: Person, clean_name: str) -> Addressee:
    """Parse a display name: "Priya Shah" → Priya; "Shah, Priya" → Priya; "Globex Talent" → the Globex team."""
    local = p.email.partition("@")[0].casefold()
    local_parts = [part for part in re.split(r"[._+\-]", local) if part]
    no_reply = any(word in local for word in _NO_REPLY)
    name = re.sub(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>", " ", clean_name)  # "Priya Shah (Hooli)"
    name = re.split(r"\s[|/–—-]\s|\s@\s|\svia\s", name)[0].strip()  # "Priya Shah | Hooli", "… via Lever"
    words = _words(name)
    lowered = [w.casefold().strip(".") for w in words]
    team_name = any(w in _TEAM_WORDS for w in lowered)
    if words and not team_name:
        if "," in name:  # "Shah, Priya"
            last, _, rest = name.partition(",")
            rest_words = [w for w in _words(rest) if w.casefold().strip(".") not in _TITLES]
            if rest_words:
                return Addressee("person", rest_words[0], f"{' '.join(rest_words)} {last.strip()}".strip())
        kept = [w for w, low in zip(words, lowered, strict=True) if low not in _TITLES] or words
        return Addressee("person", kept[0], " ".join(kept))
    if not words and not no_reply and not any(part in _TEAM_WORDS for part in local_parts):
        first = _first_from_local(local)
        if first:
            return Addressee("person", first, first)
    company = " ".join(w for w, low in zip(words, lowered, strict=True) if low not in _TEAM_WORDS).strip()
    company = company or _company_from_domain(p.email)
    team = team_name or no_reply or any(part in _TEAM_WORDS for part in local_parts)
    return Addressee("team" if team and company else "unknown", company=company if team else "")


def _first_from_local(local: str) -> str:
    """'priya.shah' → 'Priya' (only for a first.last style address)."""
    parts = re.split(r"[._]", local)
    if len(parts) >= 2 and parts[0].isalpha() and len(parts[0]) >= 2 and parts[1].isalpha():
        if parts[0] in _TEAM_WORDS:
            return ""
        return parts[0].capitalize()
    return ""


def join_names(names: list[str], language: str) -> str:
    """'Priya', 'Priya and Morgan', 'Priya, Morgan and Sam' (und in German)."""
    word = " und " if language == "de" else " and "
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + word + names[-1]


# ---- the interview as a person names it ------------------------------------------------------------

# (pattern in the title, English noun, German noun: all German nouns are neuter, so "unser …" fits)
_NOUNS = (
    (r"phone[- ]?screen(ing)?|screening call|phone interview", "phone screen", "Telefoninterview"),
    (r"technical (interview|screen)|tech(nical)? round|coding interview", "technical interview", "Fachgespräch"),
    (r"panel", "panel interview", "Panel-Interview"),
    (r"final[- ]round|final interview", "final interview", "Abschlussgespräch"),
    (r"on-?site|in[- ]person", "onsite interview", "Vor-Ort-Gespräch"),
    (r"video (interview|call)", "video interview", "Videointerview"),
    (r"recruiter (call|screen|chat)|intro(ductory)? call|call", "call", "Telefonat"),
    (r"vorstellungsgespräch|bewerbungsgespräch", "interview", "Vorstellungsgespräch"),
)


def interview_noun(title: str, language: str) -> str:
    """What the user calls this interview in a sentence: 'phone screen', 'panel interview', 'interview'."""
    text = title.casefold()
    for pattern, en, de in _NOUNS:
        if re.search(rf"(?<!\w)({pattern})(?!\w)", text):
            return de if language == "de" else en
    return "Vorstellungsgespräch" if language == "de" else "interview"


# ---- days and times ------------------------------------------------------------------------------


def day_text(value: date, language: str) -> str:
    """'Wednesday 25 November' / 'Mittwoch, 25. November'."""
    return str(format_date(value, _DAY_PATTERNS[language], locale=_LOCALES[language]))


def zone_word(label: str, language: str) -> str:
    """A zone abbreviation as readers of ``language`` know it (CET is MEZ in German)."""
    return _ZONE_WORDS.get(language, {}).get(label, label)


def relative_day(start: datetime, now: datetime, tz: tzinfo) -> str:
    """How the interview's day is said from ``now`` in ``tz``: this_morning, this_afternoon,
    this_evening, today, tomorrow, yesterday, or '' (then say the date)."""
    local, today = start.astimezone(tz), now.astimezone(tz)
    delta = (local.date() - today.date()).days
    if delta == 0:
        if local <= today:
            return "this_morning" if local.hour < 12 else ("this_afternoon" if local.hour < 18 else "this_evening")
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta == -1:
        return "yesterday"
    return ""


# ---- variants ------------------------------------------------------------------------------------


def variant(seed: str, name: str, count: int) -> int:
    """A number in [0, count) that is the same for the same case and sentence, and spread across cases."""
    if count <= 1:
        return 0
    digest = hashlib.sha256(f"{seed}\x1f{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
