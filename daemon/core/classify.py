"""Is this event a job interview? A scored, explainable, configurable rule set.

Each rule has a name and a default weight (:data:`DEFAULT_WEIGHTS`); ``classification.weights``
overrides any of them. An event is an interview when the sum of the fired rules reaches
``classification.threshold``; ``include``/``exclude`` force the result. Every fired rule leaves a
reason such as ``title mentions "phone screen" (+3.0)``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timezone
from functools import lru_cache

from daemon.config import Config
from daemon.core.copies import pick_copies
from daemon.core.model import Classification, Event, EventType, Person, Response, ShowAs, as_instant

DEFAULT_WEIGHTS: dict[str, float] = {
    "title_keyword": 3.0,  # a strong interview word in the title
    "title_hint": 2.0,  # a weaker word in the title (panel, onsite…) that needs company
    "body_keyword": 1.5,  # a strong interview word in the description or location
    "hiring_domain": 3.0,  # organizer or attendee on a hiring tool's domain (or classification.hiring_domains)
    "hiring_tool": 1.5,  # a hiring tool named in the invitation (UID, link or text)
    "external_organizer": 0.5,  # organised from another (non-consumer) domain than yours
    "conference_link": 0.5,  # a video link
    "prep_block": -6.0,  # your own "interview prep" / "practice" block with nobody else invited
    "negative_keyword": -4.0,  # e.g. "exit interview", "candidate debrief", classification.negative_keywords
    "you_interview": -5.0,  # the user is the interviewer: a scorecard or interview kit, a colleague's "candidate" invite
    "declined": -10.0,  # you declined it (before it started)
    "cancelled": -10.0,
    "not_a_meeting": -10.0,  # out-of-office, focus time, working location, birthday
    "all_day": -1.5,
}
RULES: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)

# Strong words: on their own in a title they make an interview.
STRONG_KEYWORDS: tuple[str, ...] = (
    # English
    "interview", "interviews", "job interview", "phone interview", "video interview",
    "phone screen", "phone screening", "phone-screen", "screening call", "screening interview",
    "technical screen", "technical interview", "tech screen", "tech interview", "technical assessment",
    "hiring manager", "final round", "final interview", "second round", "first round",
    "recruiter call", "recruiter screen", "recruiter chat", "recruiter interview", "talent call",
    "coding challenge", "coding exercise", "coding interview", "live coding", "pair programming interview",
    "system design interview", "case interview", "behavioral interview", "behavioural interview",
    "culture fit", "culture add", "onsite interview", "on-site interview", "take-home review",
    # German
    "Vorstellungsgespräch", "Bewerbungsgespräch", "Telefoninterview", "Jobinterview", "Videointerview",
    # French
    "entretien d'embauche", "entretien téléphonique", "entretien technique", "entretien RH",
    "entretien de recrutement",
    # Spanish / Portuguese
    "entrevista", "entrevista de trabajo", "entrevista de emprego",
    # Italian
    "colloquio", "colloquio di lavoro",
    # Dutch
    "sollicitatiegesprek", "sollicitatie",
    # Polish
    "rozmowa kwalifikacyjna", "rozmowa rekrutacyjna",
    # Nordic
    "intervju", "anställningsintervju", "jobintervju", "jobsamtale", "työhaastattelu", "haastattelu",
    # Central / Eastern Europe, Turkish, Greek
    "pohovor", "собеседование", "співбесіда", "mülakat", "iş görüşmesi", "συνέντευξη",
    # East Asian (matched without word boundaries)
    "面接", "面试", "面試", "면접",
)
# Weaker words: an interview only with other evidence (a link, an outside organizer…).
HINT_KEYWORDS: tuple[str, ...] = (
    "panel", "onsite", "on-site", "meet the team", "team fit", "screening", "assessment centre",
    "assessment center", "case study", "take-home", "take home", "entretien", "Kennenlerngespräch",
    "kennismakingsgesprek", "superday",
)
# Built-in negative words (title only): interviews that are not the user's job interviews.
NEGATIVE_KEYWORDS: tuple[str, ...] = (
    "exit interview", "stay interview", "user interview", "user interviews", "customer interview",
    "customer interviews", "research interview", "user research", "press interview", "media interview",
    "podcast", "mock interview", "interviewer training", "interview training", "debrief",
    "candidate debrief", "hiring committee", "scorecard", "interview feedback", "interviewing candidates",
)
# Interviewer-side words (title and description): the invitation is for the one asking the questions.
INTERVIEWER_SIDE: tuple[str, ...] = (
    "scorecard", "scorecards", "interview kit", "interviewer guide", "interview guide", "feedback form",
    "submit your feedback", "submit feedback", "leave your feedback", "you are interviewing",
    "you're interviewing", "you will be interviewing", "you'll be interviewing", "candidate packet",
    "candidate profile", "candidate's resume", "candidate resume", "Bewertungsbogen",
)
# Words that name the interviewer in an ATS's description (never a title: "Interviewer sync" is internal).
BODY_KEYWORDS: tuple[str, ...] = (
    "interviewer", "interviewers", "your interviewer", "you're scheduled to meet", "you are scheduled to meet",
    "you will be meeting with", "you'll be meeting with", "you'll meet with", "you will meet with",
)
# "chat with recruiter", "Initial conversation with Talent", "call w/ hiring manager", "Recruiter intro".
_TALKS = r"(?:chat|call|conversation|intro|introduction|meeting|meet|catch[\s-]?up|connect|talk|screen|sync)"
_ROLES = (
    r"(?:recruiters?|recruiting|recruitment|talent(?:\s+(?:acquisition|team|partner|partners))?|"
    r"hiring\s+(?:manager|managers|team|lead)|ta\s+team)"
)
_ROLE_TALK = re.compile(
    rf"(?<!\w)(?:{_TALKS}\s+(?:with|w/)\s+(?:(?:the|our|a|your|an)\s+)?{_ROLES}"
    r"|(?:recruiter|recruiting|talent\s+acquisition)\s+(?:intro|introduction|call|chat|conversation|screen))(?!\w)",
    re.IGNORECASE,
)
_CANDIDATE = re.compile(r"(?<!\w)(?:candidate|candidates|Kandidat(?:in)?|candidat|candidato|candidata)(?!\w)", re.IGNORECASE)
HIRING_DOMAINS: tuple[str, ...] = (
    "greenhouse.io", "lever.co", "ashbyhq.com", "myworkday.com", "workday.com", "smartrecruiters.com",
    "icims.com", "goodtime.io", "calendly.com", "hirevue.com", "modernhire.com", "jobvite.com",
    "workable.com", "recruitee.com", "teamtailor.com", "teamtailor-mail.com", "bamboohr.com",
    "personio.de", "personio.com", "coderpad.io", "karat.com", "karat.io", "gem.com", "paradox.ai",
    "breezy.hr", "applytojob.com", "jazzhr.com", "taleo.net", "hackerrank.com", "codility.com",
    "codesignal.com", "brighthire.ai", "metaview.ai", "prelude.co", "interviewing.io", "hired.com",
    "rippling-ats.com", "pinpointhq.com", "recruiterflow.com", "comeet.co", "homerun.co", "join.com",
    "dover.com", "ashbyhq.io",
)
# Hiring tools named in plain text; only names that are not ordinary words.
_TOOL_NAMES: tuple[str, ...] = (
    "greenhouse", "ashby", "workday", "smartrecruiters", "icims", "goodtime", "hirevue", "modern hire",
    "jobvite", "workable", "recruitee", "teamtailor", "bamboohr", "personio", "coderpad", "codesignal",
    "hackerrank", "codility", "brighthire", "metaview",
)
CONSUMER_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com",
        "live.co.uk", "msn.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "ymail.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.de",
        "gmx.net", "gmx.com", "web.de", "t-online.de", "mail.ru", "yandex.ru", "yandex.com", "qq.com",
        "163.com", "126.com", "fastmail.com", "fastmail.fm", "hey.com", "zoho.com", "btinternet.com",
        "orange.fr", "free.fr", "laposte.net", "libero.it", "virgilio.it", "wp.pl", "o2.pl", "seznam.cz",
        "naver.com", "hanmail.net", "rediffmail.com", "tutanota.com", "mailbox.org", "posteo.de",
    }
)
# Not people: calendars and rooms that show up as organizers or attendees.
_NON_PERSON_SUFFIXES = ("group.calendar.google.com", "resource.calendar.google.com", "calendar.google.com")
_PREP_WORDS: tuple[str, ...] = (
    "prep", "preps", "prepare", "preparing", "preparation", "practice", "practise", "practicing",
    "practising", "rehearsal", "rehearse", "mock", "study", "vorbereitung", "préparation", "preparación",
    "preparação", "preparazione", "voorbereiding", "przygotowanie", "förberedelse",
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_URL_HOST = re.compile(r"https?://([^/\s:?#\"'<>]+)", re.IGNORECASE)
# In keywords a space matches any run of spaces/dashes/underscores, a dash an optional one.
_SEPARATORS = {" ": r"[\s_\-]+", "-": r"[\s_\-]?", "'": "['’]"}
_MAX_TEXT = 20_000  # longer descriptions are scanned only this far (hostile or pasted junk)
# Characters for which a case-insensitive regex match is not the same as equality after str.lower():
# CPython re's case equivalence classes (µ/μ, ς/σ, ſ/s, ı/i…), the dotted capital I (lowers to two
# characters) and the capital sigma (lowers by context). Needles avoid them; texts holding one of the
# last group (they match ASCII i/s) skip the prefilter.



@lru_cache(maxsize=4096)
def _odd(ch: str) -> bool:
    """True for a character that ``re``'s IGNORECASE matches differently from ``str.lower()`` equality.

    That is a non-canonical member of a case class (ı, ſ, µ, ς, ϐ, ᲀ…: its upper case lowers to another
    character), one whose case mapping has several characters (İ, ß, ﬅ), or the capital sigma (lowered
    by context). Each class has one canonical member, so a needle and a text free of odd characters
    match exactly when the lowered needle occurs in the lowered text.
    """
    low, up = ch.lower(), ch.upper()
    return len(low) != 1 or len(up) != 1 or up.lower() != low or ch == "\u03a3"


def _odd_text(text: str) -> bool:
    """True when the text holds an odd character (only non-ASCII ones can be)."""
    return not text.isascii() and any(_odd(ch) for ch in set(text) if not ch.isascii())


@dataclass(frozen=True, slots=True)
class _Matcher:
    """A keyword pattern with a cheap exact prefilter: literal pieces one of which any match must contain.

    A long alternation is slow to run at every position of a description; ``needle in text.lower()`` is
    fast, and when no needle occurs the pattern cannot match. Results are always the pattern's own.
    """

    pattern: re.Pattern[str]
    needles: tuple[str, ...] | None  # None: no safe prefilter, always run the pattern

    def search(self, text: str, low: str) -> re.Match[str] | None:
        """``pattern.search(text)``; ``low`` must be ``text.lower()``."""
        needles = self.needles
        if needles is not None and not _odd_text(text):
            for needle in needles:
                if needle in low:
                    break
            else:
                return None
        return self.pattern.search(text)


def _needle(word: str) -> str | None:
    """The longest piece of ``word`` that every match must contain literally (lower-cased)."""
    best = ""
    run: list[str] = []
    for ch in (*word, " "):
        low = ch.lower()
        if ch in _SEPARATORS or _odd(ch) or _odd(low):
            if len(run) > len(best):
                best = "".join(run)
            run = []
        else:
            run.append(low)
    return best or None


def _matcher(words: Iterable[str]) -> _Matcher:
    """A :class:`_Matcher` for :func:`_pattern` over ``words``."""
    clean = [w.strip() for w in words if w and w.strip()]
    found = [_needle(w) for w in clean]
    if any(n is None for n in found):
        return _Matcher(_pattern(clean), None)
    pieces = sorted({n for n in found if n}, key=lambda n: (len(n), n))
    needles: list[str] = []
    for piece in pieces:  # shortest first: a piece containing a kept needle adds nothing
        if not any(n in piece for n in needles):
            needles.append(piece)
    return _Matcher(_pattern(clean), tuple(needles))


@dataclass(frozen=True, slots=True)
class _Rules:
    strong: _Matcher
    hint: _Matcher
    negative: _Matcher
    tools: _Matcher
    body: _Matcher  # description-only interview words (the interviewer named by an ATS)
    interviewer_side: _Matcher
    own_negative: _Matcher  # classification.negative_keywords alone, matched in descriptions too
    hiring_domains: frozenset[str]
    weights: dict[str, float]
    threshold: float
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    self_addresses: frozenset[str]
    self_domains: frozenset[str]
    missed_tag: str

    def weight(self, name: str) -> float:
        return self.weights.get(name, 0.0)


def _pattern(words: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive alternation; word-bounded except for CJK words. Longest words first."""
    bounded: list[str] = []
    loose: list[str] = []
    for word in sorted({w.strip() for w in words if w and w.strip()}, key=lambda w: (-len(w), w.casefold())):
        body = "".join(_SEPARATORS.get(ch, re.escape(ch)) for ch in word)
        (loose if _CJK.search(word) else bounded).append(body)
    parts = []
    if bounded:
        parts.append(r"(?<!\w)(?:" + "|".join(bounded) + r")(?!\w)")
    if loose:
        parts.append("(?:" + "|".join(loose) + ")")
    if not parts:
        return re.compile(r"(?!x)x")  # matches nothing
    return re.compile("|".join(parts), re.IGNORECASE)


_PREP = _matcher(_PREP_WORDS)


@lru_cache(maxsize=32)
def _compile(
    keywords: tuple[str, ...],
    negative: tuple[str, ...],
    domains: tuple[str, ...],
    weights: tuple[tuple[str, float], ...],
    threshold: float,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    addresses: tuple[str, ...],
    missed_tag: str,
) -> _Rules:
    overrides = dict(weights)
    merged = {name: float(overrides.get(name, default)) for name, default in DEFAULT_WEIGHTS.items()}
    return _Rules(
        strong=_matcher((*STRONG_KEYWORDS, *keywords)),
        hint=_matcher(HINT_KEYWORDS),
        negative=_matcher((*NEGATIVE_KEYWORDS, *negative)),
        tools=_matcher(_TOOL_NAMES),
        body=_matcher(BODY_KEYWORDS),
        interviewer_side=_matcher(INTERVIEWER_SIDE),
        own_negative=_matcher(negative),
        hiring_domains=frozenset(d.strip().lower().lstrip("@.") for d in (*HIRING_DOMAINS, *domains) if d.strip()),
        weights=merged,
        threshold=threshold,
        include=tuple(s for s in include if s.strip()),
        exclude=tuple(s for s in exclude if s.strip()),
        self_addresses=frozenset(addresses),
        self_domains=frozenset(a.rpartition("@")[2] for a in addresses if "@" in a),
        missed_tag=missed_tag,
    )


def self_addresses(config: Config) -> frozenset[str]:
    """Every address that is the user: ``user.email``, ``user.aliases`` and the accounts' emails."""
    found = set(config.user.addresses)
    found.update(a.email.strip().lower() for a in config.accounts if a.email)
    return frozenset(found)


def _rules(config: Config) -> _Rules:
    c = config.classification
    return _compile(
        tuple(c.keywords),
        tuple(c.negative_keywords),
        tuple(c.hiring_domains),
        tuple(sorted(c.weights.items())),
        float(c.threshold),
        tuple(c.include),
        tuple(c.exclude),
        tuple(sorted(self_addresses(config))),
        config.missed.tag,
    )


def is_person(p: Person, addresses: frozenset[str] = frozenset()) -> bool:
    """A real other person: not the user, not a room or resource, not a calendar address."""
    email = p.email
    if not email or "@" not in email or p.is_self or p.is_resource or email in addresses:
        return False
    return not email.endswith(_NON_PERSON_SUFFIXES)


def _in_domains(domain: str, domains: frozenset[str]) -> bool:
    """True when ``domain`` is one of ``domains`` or a subdomain of one."""
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts) - 1))


def _quote(text: str) -> str:
    return " ".join(text.split()).casefold()[:60]


def _forced(event: Event, entries: tuple[str, ...]) -> str | None:
    if not entries:
        return None
    ids = {event.source_id, event.occurrence_key, event.series_key, event.ical_uid or "", event.series_id or ""}
    title = event.title.casefold()
    for entry in entries:
        if entry in ids or entry.strip().casefold() in title:
            return entry
    return None


def _found(match: re.Match[str] | None) -> str | None:
    return _quote(match.group(0)) if match else None


@dataclass(frozen=True, slots=True)
class _TextFacts:
    """What the rules see in one piece of text (quoted matches, or None)."""

    strong: str | None
    hint: str | None
    negative: str | None
    prep: bool
    tool: str | None
    hosts: tuple[str, ...]  # lower-cased hosts of the links in it
    interviewer_side: str | None = None  # "scorecard", "you are interviewing"…
    candidate: bool = False  # the title names a candidate


_NOTHING = _TextFacts(None, None, None, False, None, ())


class _Memo:
    """Per-call cache of text and domain facts: calendars repeat titles, descriptions and addresses."""

    def __init__(self, rules: _Rules) -> None:
        self.rules = rules
        self.titles: dict[str, _TextFacts] = {}
        self.bodies: dict[str, _TextFacts] = {}
        self.domains: dict[str, bool] = {}
        self.emails: dict[str, bool] = {}
        self.explanations: dict[tuple[str, ...], tuple[str, ...]] = {}

    def reasons(self, found: list[str]) -> tuple[str, ...]:
        """One shared tuple per distinct explanation: most events of a calendar share theirs, and
        fewer long-lived objects keep the garbage collector's full passes short."""
        key = tuple(found)
        return self.explanations.setdefault(key, key)

    def facts(self, text: str, title: bool) -> _TextFacts:
        """Facts for a title (every pattern) or a description/location (strong words, tools, links)."""
        if not text:
            return _NOTHING
        cache = self.titles if title else self.bodies
        known = cache.get(text)
        if known is not None:
            return known
        rules = self.rules
        low = text.lower()
        hosts = tuple(m.group(1).lower() for m in _URL_HOST.finditer(text)) if "://" in text else ()
        strong = _found(rules.strong.search(text, low))
        if strong is None and ("recruit" in low or "talent" in low or "hiring" in low or "ta team" in low):
            strong = _found(_ROLE_TALK.search(text))
        if strong is None and not title:
            strong = _found(rules.body.search(text, low))
        facts = _TextFacts(
            strong=strong,
            hint=_found(rules.hint.search(text, low)) if title else None,
            # The user's own negative words count in the description too; the built-in list only in titles
            # ("the hiring committee will review" is a fine sentence in a candidate's invitation).
            negative=_found(rules.negative.search(text, low) if title else rules.own_negative.search(text, low)),
            prep=bool(title and _PREP.search(text, low)),
            tool=_found(rules.tools.search(text, low)),
            hosts=hosts,
            interviewer_side=_found(rules.interviewer_side.search(text, low)),
            candidate=bool(title and _CANDIDATE.search(text)),
        )
        if facts == _NOTHING:
            facts = _NOTHING  # one shared object for the common case: fewer objects for the GC to scan
        if len(cache) < 100_000:
            cache[text] = facts
        return facts

    def hiring_email(self, email: str) -> bool:
        """Whether the address is on a hiring domain and not on one of the user's own domains."""
        known = self.emails.get(email)
        if known is None:
            domain = email.rpartition("@")[2].lower()
            known = self.emails[email] = domain not in self.rules.self_domains and self.hiring(domain)
        return known

    def hiring(self, domain: str) -> bool:
        """Whether ``domain`` is (under) a hiring tool's or recruiter's domain."""
        known = self.domains.get(domain)
        if known is None:
            known = self.domains[domain] = _in_domains(domain, self.rules.hiring_domains)
        return known


def classify(event: Event, config: Config) -> Classification:
    """Score one event against the rules; the result carries every reason that counted."""
    rules = _rules(config)
    return _classify(event, event.occurrence_key, rules, config, _Memo(rules))


def classify_all(events: Iterable[Event], config: Config) -> dict[str, Classification]:
    """Classify many events, keyed by occurrence key.

    Copies of one occurrence (the same invitation in two calendars) are classified once, by the copy
    detection and planning also use (earliest start, then end, account, calendar, id), so the result
    does not depend on the order the calendars were read in.
    """
    chosen = pick_copies(events, config.user.zone)  # keyed by each copy's own occurrence key
    return dict(zip(chosen, classify_each(chosen.values(), config), strict=True))


def classify_each(events: Iterable[Event], config: Config) -> list[Classification]:
    """Classify every given event on its own, copies included, in order.

    For the copy :func:`classify_all` picks, the verdict is the same as there: callers that keep
    classifications per calendar (and classify only the calendars that changed) pick copies afterwards.
    """
    rules = _rules(config)
    memo = _Memo(rules)
    return [_classify(event, event.occurrence_key, rules, config, memo) for event in events]


def _classify(event: Event, key: str, rules: _Rules, config: Config, memo: _Memo) -> Classification:
    excluded = _forced(event, rules.exclude)
    if excluded is not None:
        return Classification(key, False, 0.0, (f'excluded by classification.exclude ("{_quote(excluded)}")',))
    included = _forced(event, rules.include)

    score = 0.0
    reasons: list[str] = []

    def fire(rule: str, text: str) -> None:
        nonlocal score
        weight = rules.weight(rule)
        if weight == 0.0:
            return
        score += weight
        reasons.append(f"{text} ({weight:+.1f})")

    title = memo.facts(event.title[:2000], True)
    body = memo.facts(event.description[:_MAX_TEXT], False)
    location = memo.facts(event.location[:2000], False)

    if title.strong:
        fire("title_keyword", f'title mentions "{title.strong}"')
    else:
        if title.hint:
            fire("title_hint", f'title mentions "{title.hint}"')
        body_hit = body.strong or location.strong
        if body_hit:
            fire("body_keyword", f'description mentions "{body_hit}"')

    people = [p for p in (event.organizer, *event.attendees) if p is not None and p.email]
    hiring = None
    for p in people:
        if memo.hiring_email(p.email) and is_person(p, rules.self_addresses):
            hiring = p
            break
    if hiring is not None:
        role = "organizer" if hiring is event.organizer else "attendee"
        fire("hiring_domain", f"{role} is on {hiring.domain}, a hiring tool or recruiter domain")
    else:
        tool = _tool_evidence(event, title, body, location, memo)
        if tool:
            fire("hiring_tool", tool)

    organizer = event.organizer
    if organizer is not None and is_person(organizer, rules.self_addresses):
        domain = organizer.domain
        if domain and domain not in rules.self_domains and domain not in CONSUMER_DOMAINS:
            fire("external_organizer", f"organised from outside your domain ({domain})")

    if event.join_urls:
        fire("conference_link", "has a video link")

    if title.negative:
        fire("negative_keyword", f'title mentions "{title.negative}"')
    elif body.negative or location.negative:
        fire("negative_keyword", f'description mentions "{body.negative or location.negative}"')

    side = title.interviewer_side or body.interviewer_side or location.interviewer_side
    if side:
        fire("you_interview", f'you are the interviewer: it mentions "{side}"')
    elif title.candidate and organizer is not None and _own_side(organizer, rules):
        fire("you_interview", "you are the interviewer: a candidate's interview organised from your own side")

    if title.prep and not any(is_person(p, rules.self_addresses) for p in people):
        fire("prep_block", "your own preparation/practice block, nobody else invited")

    if event.cancelled:
        fire("cancelled", "the event is cancelled")
    elif event.self_response is Response.DECLINED:
        start = as_instant(event.start, config.user.zone).astimezone(timezone.utc)
        if event.updated is not None and event.updated.astimezone(timezone.utc) > start:
            reasons.append("you declined it after it started (treated as a possible miss, not a decline)")
        else:
            fire("declined", "you declined it")

    special = _special(event)
    if special:
        fire("not_a_meeting", f"it is {special}")
    if event.all_day:
        fire("all_day", "all-day event")

    score = round(score, 2)
    if included is not None:
        reasons.append(f'included by classification.include ("{_quote(included)}")')
        return Classification(key, True, score, tuple(reasons))
    is_interview = score >= rules.threshold
    verdict = "at or above" if is_interview else "below"
    reasons.append(f"score {score:.1f} is {verdict} the threshold {rules.threshold:.1f}")
    return Classification(key, is_interview, score, memo.reasons(reasons))


def _own_side(organizer: Person, rules: _Rules) -> bool:
    """The organizer is the user or a colleague on the user's own (non-consumer) domain."""
    if organizer.is_self or organizer.email in rules.self_addresses:
        return True
    return organizer.domain in rules.self_domains and organizer.domain not in CONSUMER_DOMAINS


def _special(event: Event) -> str | None:
    if event.event_type is EventType.OUT_OF_OFFICE or event.show_as is ShowAs.OUT_OF_OFFICE:
        return "an out-of-office entry"
    if event.event_type is EventType.FOCUS_TIME:
        return "a focus-time block"
    if event.event_type is EventType.WORKING_LOCATION or event.show_as is ShowAs.WORKING_ELSEWHERE:
        return "a working-location entry"
    if event.event_type is EventType.BIRTHDAY:
        return "a birthday"
    return None


def _tool_evidence(event: Event, title: _TextFacts, body: _TextFacts, location: _TextFacts, memo: _Memo) -> str | None:
    """A hiring tool behind the invitation: its UID domain, a link to it, or its name in the text."""
    uid = event.ical_uid or ""
    if "@" in uid:
        domain = uid.rpartition("@")[2].strip().lower()
        if memo.hiring(domain):
            return f"invitation was created by {domain}"
    for host in (*location.hosts, *body.hosts):
        if memo.hiring(host):
            return f"links to {host}"
    for facts in (title, body):
        if facts.tool:
            return f'mentions the hiring tool "{facts.tool}"'
    return None
