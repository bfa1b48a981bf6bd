"""Skip the parts of a big .ics file that cannot touch the window, before icalendar parses it.

A calendar exported from years of use is mostly history: parsing it whole cost three quarters of a
`check` on a 5k–50k event file. This pass looks at each VEVENT's raw lines and drops it only when
it certainly lies outside the window: a one-off event (no RRULE, RDATE, EXRULE or RECURRENCE-ID)
whose DTSTART date is after the window, or whose DTEND date (DTSTART when it has neither DTEND nor
DURATION) is before it, with two days of margin for any UTC offset and TZID. Anything else —
recurring series and their overrides, events with a DURATION, lines it cannot read, blocks that do
not look like one well-formed VEVENT — is kept for the real parser to decide. The rest of the file
(VTIMEZONE, VTODO, calendar properties) passes through byte for byte.

What this gives up, by design: a malformed event outside the window is no longer reported.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from providers.base import Window

MARGIN = timedelta(days=2)  # wider than any UTC offset (±14 h) plus the window's own refresh slack
MIN_BYTES = 256 * 1024  # below this, parsing everything is cheap: leave small files alone

_BLOCK = re.compile(rb"^BEGIN:VEVENT\r?\n.*?^END:VEVENT[ \t]*(?:\r?\n|\Z)", re.MULTILINE | re.DOTALL)
_FOLD = re.compile(rb"\r?\n[ \t]")
_RECURS = re.compile(rb"^(?:RRULE|RDATE|EXRULE|RECURRENCE-ID)[;:]", re.MULTILINE | re.IGNORECASE)
_START = re.compile(rb"^DTSTART(?:;[^:\r\n]*)?:(\d{4})(\d{2})(\d{2})", re.MULTILINE | re.IGNORECASE)
_END = re.compile(rb"^DTEND(?:;[^:\r\n]*)?:(\d{4})(\d{2})(\d{2})", re.MULTILINE | re.IGNORECASE)
_DURATION = re.compile(rb"^DURATION[;:]", re.MULTILINE | re.IGNORECASE)
_BEGIN = re.compile(rb"^BEGIN:VEVENT", re.MULTILINE | re.IGNORECASE)


def _date(match: re.Match[bytes] | None) -> date | None:
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def certainly_outside(block: bytes, first: date, last: date) -> bool:
    """Whether one raw VEVENT block is a one-off event entirely outside ``[first, last]``."""
    if len(_BEGIN.findall(block)) != 1:
        return False  # not one well-formed component (e.g. an END line the pattern did not see)
    text = _FOLD.sub(b"", block)
    if _RECURS.search(text):
        return False
    starts = _START.findall(text)
    if len(starts) != 1:
        return False
    start = _date(_START.search(text))
    if start is None:
        return False
    if start > last:
        return True
    ends = _END.findall(text)
    if len(ends) > 1:
        return False
    if ends:
        end = _date(_END.search(text))
        return end is not None and end >= start and end < first
    if _DURATION.search(text):
        return False  # a duration of any length: let the parser work it out
    return start < first


def drop_outside(data: bytes, window: Window, min_bytes: int | None = None) -> tuple[bytes, int]:
    """``data`` without the VEVENTs that certainly miss ``window``, and how many were dropped."""
    if len(data) < (MIN_BYTES if min_bytes is None else min_bytes):
        return data, 0
    first = window.start.date() - MARGIN
    last = window.end.date() + MARGIN
    kept: list[bytes] = []
    position = 0
    dropped = 0
    for match in _BLOCK.finditer(data):
        if certainly_outside(match.group(), first, last):
            kept.append(data[position:match.start()])
            position = match.end()
            dropped += 1
    if not dropped:
        return data, 0
    kept.append(data[position:])
    return b"".join(kept), dropped
