"""What an invitation email says: phone numbers, join links, and the start time it states in words.

Provider-independent and pure: the Gmail, Outlook and IMAP mail providers hand over the email's
subject and plain text; :func:`parse_invitation` finds the facts and :func:`with_invitation` attaches
them to the event before detection. A stated time counts only when its zone is written and certain
("2pm ET", "14:00 CET", "10am – 11am (Pacific Time - Los Angeles)", "(America/New_York)"); a bare
offset such as Outlook's "(UTC-08:00)" is a zone's standard offset, not the day's, so it is never used
on its own.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, time, timezone, tzinfo
from zoneinfo import ZoneInfo

from daemon.config import Config
from daemon.core.model import Event, InvitationFacts, Risk, RiskCause, RiskKind, Severity, StatedTime
from daemon.core.normalize import find_join_urls, find_phones, zone_name

MAX_TEXT = 50_000  # an invitation's text is read this far

# Zone words as invitation emails write them → IANA. Ambiguous ones (IST: India, Ireland or Israel?) are absent.
_ZONE_WORDS: dict[str, str] = {
    "et": "America/New_York", "est": "America/New_York", "edt": "America/New_York",
    "eastern": "America/New_York", "eastern time": "America/New_York",
    "eastern standard time": "America/New_York", "eastern daylight time": "America/New_York",
    "ct": "America/Chicago", "cst": "America/Chicago", "cdt": "America/Chicago", "central": "America/Chicago",
    "central time": "America/Chicago", "central standard time": "America/Chicago",
    "central daylight time": "America/Chicago",
    "mt": "America/Denver", "mst": "America/Denver", "mdt": "America/Denver", "mountain": "America/Denver",
    "mountain time": "America/Denver", "mountain standard time": "America/Denver",
    "mountain daylight time": "America/Denver",
    "pt": "America/Los_Angeles", "pst": "America/Los_Angeles", "pdt": "America/Los_Angeles",
    "pacific": "America/Los_Angeles", "pacific time": "America/Los_Angeles",
    "pacific standard time": "America/Los_Angeles", "pacific daylight time": "America/Los_Angeles",
    "utc": "UTC", "gmt": "UTC", "bst": "Europe/London", "uk time": "Europe/London",
    "london time": "Europe/London", "cet": "Europe/Berlin", "cest": "Europe/Berlin", "mez": "Europe/Berlin",
    "mesz": "Europe/Berlin", "central european time": "Europe/Berlin",
    "central european summer time": "Europe/Berlin", "aest": "Australia/Sydney", "aedt": "Australia/Sydney",
    "jst": "Asia/Tokyo", "sgt": "Asia/Singapore", "hkt": "Asia/Hong_Kong",
}
# Windows display names Outlook writes after "(UTC-08:00)": the name, not the offset, places the time.
_DISPLAY_NAMES: dict[str, str] = {
    "pacific time (us & canada)": "America/Los_Angeles",
    "eastern time (us & canada)": "America/New_York",
    "central time (us & canada)": "America/Chicago",
    "mountain time (us & canada)": "America/Denver",
    "dublin, edinburgh, lisbon, london": "Europe/London",
    "amsterdam, berlin, bern, rome, stockholm, vienna": "Europe/Berlin",
    "brussels, copenhagen, madrid, paris": "Europe/Paris",
    "coordinated universal time": "UTC",
}
_WORDS = "|".join(sorted((re.escape(w) for w in _ZONE_WORDS), key=len, reverse=True))
_DISPLAY = "|".join(re.escape(w) for w in _DISPLAY_NAMES)
_AMPM = r"(?:a\.?\s?m\.?|p\.?\s?m\.?)"
_CLOCK = rf"(\d{{1,2}})(?:[:.h](\d{{2}}))?\s*({_AMPM})?"
_TIME = re.compile(
    rf"(?<![\w:/.,-]){_CLOCK}"
    rf"(?:\s*(?:-|–|—|to|until|bis)\s*{_CLOCK})?"
    r"\s*(?:\(\s*)?"
    r"(?:(?:UTC|GMT)\s*[+-]\s*\d{1,2}(?::?\d{2})?\s*\)?\s*)?"  # Outlook's standard-offset label, skipped
    rf"(?:({_DISPLAY})|({_WORDS})(?!\s*[+-]\s*\d)(?:\s+-\s+[A-Z][A-Za-z_]*(?:\s[A-Z][A-Za-z_]*){{0,3}})?\b|([A-Z][a-z]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?))",
    re.IGNORECASE,
)
_MONTHS = {m: i for i, names in enumerate(
    (("jan", "january", "januar", "janvier", "enero"), ("feb", "february", "februar", "février", "febrero"),
     ("mar", "march", "märz", "mars", "marzo"), ("apr", "april", "avril", "abril"),
     ("may", "mai", "mayo"), ("jun", "june", "juni", "juin", "junio"), ("jul", "july", "juli", "juillet", "julio"),
     ("aug", "august", "août", "agosto"), ("sep", "sept", "september", "septembre", "septiembre"),
     ("oct", "october", "oktober", "octobre", "octubre"), ("nov", "november", "novembre", "noviembre"),
     ("dec", "december", "dezember", "décembre", "diciembre")), start=1) for m in names}
_MONTH = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_DATE_PATTERNS = (
    re.compile(r"(\d{4})-(\d{2})-(\d{2})"),  # ISO
    re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b", re.IGNORECASE),
    re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\.?\s+({_MONTH})\.?(?:,?\s+(\d{{4}}))?\b", re.IGNORECASE),
)


def parse_invitation(text: str, subject: str = "") -> InvitationFacts:
    """The phones, join links and zone-qualified start times an invitation email's text states."""
    body = (text or "")[:MAX_TEXT]
    whole = f"{subject}\n{body}" if subject else body
    return InvitationFacts(
        subject=subject.strip(),
        phones=find_phones(body),
        join_urls=find_join_urls(body),
        times=stated_times(whole),
    )


def stated_times(text: str) -> tuple[StatedTime, ...]:
    """Start times written with a certain zone, each with the date written just before it, if any."""
    out: list[StatedTime] = []
    for match in _TIME.finditer(text):
        h1, m1, ap1, h2, _m2, ap2, display, word, iana = match.groups()
        if display:
            zone = _DISPLAY_NAMES[display.lower()]
        elif word:
            zone = _ZONE_WORDS[re.sub(r"\s+", " ", word.lower())]
        else:
            zone = zone_name(iana) or ""
        if not zone:
            continue
        hour, minute = int(h1), int(m1 or 0)
        meridiem = ap1 or ap2
        if not ap1 and ap2 and h2 is not None and _h12(int(h1)) > _h12(int(h2)):
            meridiem = "am" if ap2.lower().startswith("p") else "pm"  # "11-1pm": the start is 11 am
        if meridiem:
            if not 1 <= hour <= 12:
                continue
            hour = hour % 12 + (12 if meridiem.lower().startswith("p") else 0)
        elif m1 is None:
            continue  # "at 3 ET": too loose to trust
        if hour > 23 or minute > 59:
            continue
        year, month, day = _date_near(text, match.start(), match.end())
        said = " ".join(match.group(0).split())
        if said.count("(") > said.count(")"):
            said += ")"
        out.append(StatedTime(said, hour, minute, zone, year, month, day))
    return tuple(dict.fromkeys(out))


def _h12(hour: int) -> int:
    return hour % 12


def _date_near(text: str, start: int, end: int) -> tuple[int | None, int | None, int | None]:
    """The date written with a time: the last one in the 60 characters before it, else one just after
    ("2pm ET on November 24")."""
    found = _last_date(text[max(0, start - 60) : start])
    if found[1] is None:
        after = re.match(r"\s*(?:,|on|the|am|le|el)?\s*(?:\w+day,?\s+)?(.{0,30})", text[end : end + 45], re.IGNORECASE)
        if after:
            head = text[end : end + after.start(1)]
            candidate = _last_date(after.group(1))
            if candidate[1] is not None and re.match(
                rf"(?i)\s*(?:\d|{_MONTH})", after.group(1)
            ) and "\n" not in head:
                found = candidate
    return found


def _last_date(window: str) -> tuple[int | None, int | None, int | None]:
    """The last date written in a piece of text."""
    best: tuple[int, tuple[int | None, int | None, int | None]] | None = None
    for index, pattern in enumerate(_DATE_PATTERNS):
        for m in pattern.finditer(window):
            found: tuple[int | None, int, int]
            if index == 0:
                found = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
            elif index == 1:
                found = (int(m.group(3)) if m.group(3) else None, _MONTHS[m.group(1).lower()], int(m.group(2)))
            else:
                found = (int(m.group(3)) if m.group(3) else None, _MONTHS[m.group(2).lower()], int(m.group(1)))
            if not (found[1] and 1 <= found[1] <= 12 and found[2] and 1 <= found[2] <= 31):
                continue
            if best is None or m.end() > best[0]:
                best = (m.end(), found)
    return best[1] if best else (None, None, None)


def with_invitation(event: Event, facts: InvitationFacts) -> Event:
    """The event with the email's facts attached, and its phones and links the event lacked added."""
    phones = tuple(dict.fromkeys((*event.phones, *facts.phones)))
    links = tuple(dict.fromkeys((*event.join_urls, *facts.join_urls)))
    return replace(event, invitation=facts, phones=phones, join_urls=links)




def _zone(name: str) -> tzinfo:
    return timezone.utc if name == "UTC" else ZoneInfo(name)


def _agrees(stated: StatedTime, start: datetime) -> bool:
    local = start.astimezone(_zone(stated.zone))
    if (local.hour, local.minute) != (stated.hour, stated.minute):
        return False
    return stated.month is None or (local.month, local.day) == (stated.month, stated.day)


def _about_this_day(stated: StatedTime, start: datetime) -> bool:
    """Undated, or dated within a day of the event's date in the stated zone (a wrong zone moves the date)."""
    if stated.month is None or stated.day is None:
        return True
    local = start.astimezone(_zone(stated.zone)).date()
    try:
        said = date(stated.year or local.year, stated.month, stated.day)
    except ValueError:
        return False
    return abs((said - local).days) <= 1


def _instant(stated: StatedTime, start: datetime) -> datetime:
    """The instant a statement means, on its own date or the event's date in the stated zone."""
    tz = _zone(stated.zone)
    local = start.astimezone(tz)
    day = local.date()
    if stated.month is not None and stated.day is not None:
        day = date(stated.year or local.year, stated.month, stated.day)
    return datetime.combine(day, time(stated.hour, stated.minute), tzinfo=tz)


def time_mismatch(event: Event, start: datetime, config: Config) -> Risk | None:
    """A ``time_mismatch`` risk when the invitation email states another start than the event's.

    Counted: a statement with the same clock time as the event in its own or the user's zone but
    another zone ("2pm ET" for a 2pm PT event: the classic), or a dated statement of that day with
    another time. An undated other time ("arrive at 1:45pm ET") is not enough; one statement agreeing
    with the event is enough to say nothing.
    """
    facts = event.invitation
    if facts is None or not facts.times:
        return None
    stated = [t for t in facts.times if _about_this_day(t, start)]
    if not stated or any(_agrees(t, start) for t in stated):
        return None
    user_tz = config.user.zone
    own = zone_name(event.timezone)
    zones = [user_tz] if own is None else [user_tz, _zone(own)]
    walls = {(start.astimezone(tz).hour, start.astimezone(tz).minute) for tz in zones}
    for t in stated:
        if (t.hour, t.minute) not in walls and t.month is None:
            continue
        meant = _instant(t, start)
        mine, theirs = start.astimezone(user_tz), meant.astimezone(user_tz)
        earlier = meant < start
        when = f"{theirs:%a %d %b %H:%M}" if theirs.date() != mine.date() else f"{theirs:%H:%M}"
        return Risk(
            RiskKind.TIME_MISMATCH,
            Severity.CRITICAL if earlier else Severity.WARNING,
            event.occurrence_key,
            f'the invitation email says "{t.text}", which is {when} your time, but the calendar has it at '
            f"{mine:%H:%M}" + ("; going by the calendar you would be late" if earlier else ""),
            cause=RiskCause.TIMEZONE,
        )
    return None


__all__ = ["parse_invitation", "stated_times", "time_mismatch", "with_invitation"]
