"""Which copy of an occurrence counts, when the same invitation sits on two calendars.

One rule for every module (classification, detection, planning, the engine's evaluation): the
copy that starts first, then ends first, then by account, calendar and id, so the choice never
depends on the order the calendars were read in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo

from daemon.core.model import Event, as_instant

CopyRank = tuple[float, float, str, str, str]


def rank_of(start: float, end: float, event: Event) -> CopyRank:
    """The rank of ``event`` from its start and end in POSIX seconds (lower counts)."""
    return (start, max(start, end), event.account, event.calendar_id, event.source_id)


def copy_rank(event: Event, tz: tzinfo) -> CopyRank:
    """The rank of ``event`` among copies of its occurrence (lower counts); all-day dates in ``tz``."""
    try:
        start, end = as_instant(event.start, tz).timestamp(), as_instant(event.end, tz).timestamp()
    except (ValueError, TypeError, OverflowError):
        start = end = float("inf")  # a malformed copy never wins over a readable one
    return rank_of(start, end, event)


def pick_copies(events: Iterable[Event], tz: tzinfo) -> dict[str, Event]:
    """One event per occurrence key: the copy that counts."""
    chosen: dict[str, Event] = {}
    for event in events:
        key = event.occurrence_key
        known = chosen.get(key)
        if known is None or copy_rank(event, tz) < copy_rank(known, tz):
            chosen[key] = event
    return chosen
