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
from daemon.model import Classification, Event, EventType, Person, Response, ShowAs, as_instant

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
_PREP = re.compile(
    r"(?<!\w)(prep|preps|prepare|preparing|preparation|practice|practise|practicing|practising|rehearsal|"
    r"rehearse|mock|study|vorbereitung|préparation|preparación|preparação|preparazione|voorbereiding|"
    r"przygotowanie|förberedelse)(?!\w)",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_URL_HOST = re.compile(r"https?://([^/\s:?#\"'<>]+)", re.IGNORECASE)
# In keywords a space matches any run of spaces/dashes/underscores, a dash an optional one.
_SEPARATORS = {" ": r"[\s_\-]+", "-": r"[\s_\-]?", "'": "['’]"}
_MAX_TEXT = 20_000  # longer descriptions are scanned only this far (hostile or pasted junk)


@dataclass(frozen=True, slots=True)
class _Rules:
    strong: re.Pattern[str]
    hint: re.Pattern[str]
    negative: re.Pattern[str]
    tools: re.Pattern[str]
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
        strong=_pattern((*STRONG_KEYWORDS, *keywords)),
        hint=_pattern(HINT_KEYWORDS),
        negative=_pattern((*NEGATIVE_KEYWORDS, *negative)),
        tools=_pattern(_TOOL_NAMES),
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
    ids = {event.source_id, event.occurrence_key, event.series_key, event.ical_uid or "", event.series_id or ""}
    title = event.title.casefold()
    for entry in entries:
        if entry in ids or entry.strip().casefold() in title:
            return entry
    return None


def classify(event: Event, config: Config) -> Classification:
    """Score one event against the rules; the result carries every reason that counted."""
    return _classify(event, _rules(config), config)


def classify_all(events: Iterable[Event], config: Config) -> dict[str, Classification]:
    """Classify many events, keyed by occurrence key (the first event of a key wins)."""
    rules = _rules(config)
    out: dict[str, Classification] = {}
    for event in events:
        key = event.occurrence_key
        if key not in out:
            out[key] = _classify(event, rules, config)
    return out


def _classify(event: Event, rules: _Rules, config: Config) -> Classification:
    key = event.occurrence_key
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

    title = event.title[:2000]
    body = event.description[:_MAX_TEXT]
    location = event.location[:2000]

    strong = rules.strong.search(title)
    if strong:
        fire("title_keyword", f'title mentions "{_quote(strong.group(0))}"')
    else:
        hint = rules.hint.search(title)
        if hint:
            fire("title_hint", f'title mentions "{_quote(hint.group(0))}"')
        body_hit = rules.strong.search(body) or rules.strong.search(location)
        if body_hit:
            fire("body_keyword", f'description mentions "{_quote(body_hit.group(0))}"')

    people = [p for p in (event.organizer, *event.attendees) if p is not None and p.email]
    hiring = next(
        (
            p
            for p in people
            if is_person(p, rules.self_addresses)
            and p.domain not in rules.self_domains
            and _in_domains(p.domain, rules.hiring_domains)
        ),
        None,
    )
    if hiring is not None:
        role = "organizer" if hiring is event.organizer else "attendee"
        fire("hiring_domain", f"{role} is on {hiring.domain}, a hiring tool or recruiter domain")
    else:
        tool = _tool_evidence(event, title, body, location, rules)
        if tool:
            fire("hiring_tool", tool)

    organizer = event.organizer
    if organizer is not None and is_person(organizer, rules.self_addresses):
        domain = organizer.domain
        if domain and domain not in rules.self_domains and domain not in CONSUMER_DOMAINS:
            fire("external_organizer", f"organised from outside your domain ({domain})")

    if event.join_urls:
        fire("conference_link", "has a video link")

    negative = rules.negative.search(title)
    if negative:
        fire("negative_keyword", f'title mentions "{_quote(negative.group(0))}"')

    if _PREP.search(title) and not any(is_person(p, rules.self_addresses) for p in people):
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
    return Classification(key, is_interview, score, tuple(reasons))


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


def _tool_evidence(event: Event, title: str, body: str, location: str, rules: _Rules) -> str | None:
    """A hiring tool behind the invitation: its UID domain, a link to it, or its name in the text."""
    uid = event.ical_uid or ""
    if "@" in uid:
        domain = uid.rpartition("@")[2].strip().lower()
        if _in_domains(domain, rules.hiring_domains):
            return f"invitation was created by {domain}"
    for text in (location, body):
        for match in _URL_HOST.finditer(text):
            host = match.group(1).lower()
            if _in_domains(host, rules.hiring_domains):
                return f"links to {host}"
    for text in (title, body):
        named = rules.tools.search(text)
        if named:
            return f'mentions the hiring tool "{_quote(named.group(0))}"'
    return None
