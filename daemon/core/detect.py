"""Risks for each interview: clashes, double bookings, time off, buffers, odd hours, missing links, misses.

One sweep over the intervals sorted by start finds every overlap involving an interview in
O(n log n + k) (k = overlapping pairs, each a bare index); at most MAX_OVERLAPS of them per
interview become risks of their own and the rest one summary per kind, so the output (and what the
planner, the store and the report do with it) stays O(n). Neighbours for the buffer checks come
from binary search.
All-day events become intervals in the user's zone. Pure: events, config and ``now`` in, risks out,
in a stable order whatever the input order.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from operator import attrgetter

from daemon.config import Config
from daemon.core.copies import rank_of
from daemon.core.invitation import time_mismatch
from daemon.core.model import (
    Classification,
    Event,
    EventType,
    Response,
    Risk,
    RiskCause,
    RiskKind,
    Severity,
    ShowAs,
    as_instant,
    ensure_aware,
)
from daemon.core.normalize import find_join_urls, find_phones, zone

UTC = timezone.utc
MISSED_LOOKBACK = timedelta(days=7)  # older misses are history for the report, not news
NEIGHBOUR_LIMIT = 64  # neighbours examined per side; enough for any real calendar
MAX_OVERLAPS = 8  # overlaps reported one by one per interview; the rest are summarised by kind
KIND_ORDER = {kind: i for i, kind in enumerate(RiskKind)}
SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_PLACEHOLDER = re.compile(
    r"^\s*(zoom|zoom meeting|zoom call|microsoft teams( meeting)?|teams( meeting| call)?|google meet|"
    r"hangouts?|meet|webex|skype|online|virtual|video|video call|remote|tbd|tba|tbc|"
    r"to be (confirmed|determined|announced)|n/?a|none|-+|\?+)\s*\.?\s*$",
    re.IGNORECASE,
)
_REMOTE_WORDS = re.compile(
    r"(?<!\w)(phone|call|dial|tel|telephone|zoom|teams|meet|webex|skype|hangouts?|online|virtual|remote|"
    r"video)(?!\w)",
    re.IGNORECASE,
)
_URL = re.compile(r"https?://", re.IGNORECASE)
_LINK_HINT = re.compile(r"(join|meeting|call|video|link|dial|conference)[^\n]{0,60}https?://", re.IGNORECASE)


@dataclass(slots=True)
class _Item:
    event: Event
    key: str
    first: datetime  # start as given (any zone; all-day: midnight in the user's zone)
    last: datetime  # end as given, never before the start
    s: float  # POSIX seconds of the start, for the sweep
    e: float
    interview: bool  # classified as an interview
    attends: bool  # the user goes (not declined, not cancelled)
    blocks: bool  # Event.blocks_time
    ooo: bool  # out of office: OOO entries and all-day busy time
    all_day: bool

    @property
    def start(self) -> datetime:
        """The start in UTC (so differences are elapsed time whatever the zone)."""
        return self.first.astimezone(UTC)

    @property
    def end(self) -> datetime:
        return self.last.astimezone(UTC)


def _items(events: Sequence[Event], interviews: Mapping[str, Classification], tz: tzinfo) -> list[_Item]:
    """One item per occurrence key (the same choice whatever the input order), malformed ones dropped."""
    chosen: dict[str, _Item] = {}
    for event in events:
        try:
            item = _item(event, interviews, tz)
        except (ValueError, TypeError, OverflowError, AttributeError):
            continue  # a malformed event affects only itself
        other = chosen.get(item.key)
        if other is None or rank_of(item.s, item.e, item.event) < rank_of(other.s, other.e, other.event):
            chosen[item.key] = item
    # Sorted by (s, e, key): stable passes from the last criterion to the first, no key tuples.
    out = sorted(chosen.values(), key=_BY_KEY)
    out.sort(key=_BY_END)
    out.sort(key=_BY_START)
    return out


_BY_START = attrgetter("s")
_BY_END = attrgetter("e")
_BY_KEY = attrgetter("key")


def _item(event: Event, interviews: Mapping[str, Classification], tz: tzinfo) -> _Item:
    key = event.occurrence_key
    start, end = event.start, event.end
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        start, end = as_instant(start, tz), as_instant(end, tz)
    s, e = start.timestamp(), end.timestamp()
    if e < s:
        end, e = start, s
    found = interviews.get(key)
    blocks = event.blocks_time
    attends = event.user_attends
    ooo = attends and (
        event.event_type is EventType.OUT_OF_OFFICE
        or event.show_as is ShowAs.OUT_OF_OFFICE
        or (event.all_day and blocks)
    )
    return _Item(
        event=event,
        key=key,
        first=start,
        last=end,
        s=s,
        e=e,
        interview=bool(found and found.is_interview),
        attends=attends,
        blocks=blocks,
        ooo=ooo,
        all_day=event.all_day,
    )


# ---- small helpers shared with the planner ------------------------------------------------------


def reschedule_first(a: Event, b: Event, tz: tzinfo) -> Event:
    """Of two clashing interviews, the one to move: booked later, else starting later, else key order."""
    ca = a.created.astimezone(UTC) if a.created is not None else None
    cb = b.created.astimezone(UTC) if b.created is not None else None
    if ca is not None and cb is not None and ca != cb:
        return a if ca > cb else b
    sa, sb = a.span(tz)[0].astimezone(UTC), b.span(tz)[0].astimezone(UTC)
    if sa != sb:
        return a if sa > sb else b
    return a if a.occurrence_key > b.occurrence_key else b


def is_placeholder_location(location: str) -> bool:
    """'Zoom', 'Teams', 'TBD'… with nothing else: a location that tells nobody where to go."""
    return bool(_PLACEHOLDER.match(location or ""))


def is_physical(location: str) -> bool:
    """A location that reads like a place to go to (not a link, a phone call or a placeholder)."""
    text = (location or "").strip()
    if not text or is_placeholder_location(text) or _URL.search(text) or _REMOTE_WORDS.search(text):
        return False
    return not re.fullmatch(r"[\d\s+().\-/]+", text)


def in_person(event: Event) -> bool:
    """An interview at a physical place, with no video link."""
    return is_physical(event.location) and not event.join_urls


def has_join_info(event: Event) -> bool:
    """A link, a phone number or a usable location: enough to turn up."""
    if event.join_urls or event.phones:
        return True
    location = (event.location or "").strip()
    if location and not is_placeholder_location(location):
        return True
    text = event.description[:20_000]
    return bool(find_join_urls(text) or find_phones(text) or _LINK_HINT.search(text))


def _same_place(a: str, b: str) -> bool:
    na = re.sub(r"[\W_]+", " ", a.casefold()).strip()
    nb = re.sub(r"[\W_]+", " ", b.casefold()).strip()
    return na == nb or (bool(na) and bool(nb) and (na in nb or nb in na))


def zones_differ(event_zone: tzinfo, user_zone: tzinfo, at: datetime) -> bool:
    """True when two zones show different wall-clock times at ``at``."""
    return at.astimezone(event_zone).utcoffset() != at.astimezone(user_zone).utcoffset()


def title_text(event: Event) -> str:
    """The event's title for evidence shown to the user: quoted, one line, shortened."""
    if event.is_private:
        return "a private event"
    title = " ".join(_CONTROL.sub(" ", event.title).split())
    if not title:
        return "an untitled event"
    if len(title) > 60:
        title = title[:59].rstrip() + "…"
    return f'"{title}"'


def when_text(start: datetime, end: datetime, tz: tzinfo, all_day: bool = False) -> str:
    """'Wed 25 Nov 13:30–14:30' in ``tz``; dates only for all-day events."""
    a, b = start.astimezone(tz), end.astimezone(tz)
    day = f"{_DAYS[a.weekday()]} {a.day} {_MONTHS[a.month - 1]}"
    if all_day:
        last = b - timedelta(days=1) if b > a else b
        if last.date() == a.date():
            return f"{day} (all day)"
        return f"{day} – {_DAYS[last.weekday()]} {last.day} {_MONTHS[last.month - 1]} (all day)"
    tail = f"{b:%H:%M}" if b.date() == a.date() else f"{_DAYS[b.weekday()]} {b.day} {_MONTHS[b.month - 1]} {b:%H:%M}"
    return f"{day} {a:%H:%M}–{tail}"


def _when(item: _Item, tz: tzinfo) -> str:
    return when_text(item.first, item.last, tz, item.all_day)


def timezone_mistake(event: Event, start: datetime, config: Config) -> tuple[bool, str]:
    """Whether an interview starts outside waking hours for the user but inside them in its own zone."""
    tz = config.user.zone
    waking = config.detection.waking_hours
    own = zone(event.timezone) if event.timezone else None
    if own is None or not zones_differ(own, tz, start):
        return False, ""
    theirs = start.astimezone(own)
    if waking.start <= theirs.time() < waking.end:
        return True, f"{theirs:%H:%M} in {event.timezone}"
    return False, ""


# ---- the sweep ----------------------------------------------------------------------------------


def _overlaps(items: list[_Item], now_s: float) -> dict[int, list[int]]:
    """For each subject (an attended, recent-or-upcoming interview) the items overlapping it."""
    horizon = now_s - MISSED_LOOKBACK.total_seconds()
    found: dict[int, list[int]] = {}
    active_blockers: list[tuple[float, int]] = []
    active_subjects: list[tuple[float, int]] = []
    for index, item in enumerate(items):  # items are sorted by start
        while active_blockers and active_blockers[0][0] <= item.s:
            heapq.heappop(active_blockers)
        while active_subjects and active_subjects[0][0] <= item.s:
            heapq.heappop(active_subjects)
        subject = item.interview and item.attends and item.e > horizon
        blocker = item.attends and (item.interview or item.blocks or item.ooo)
        if subject:
            mine = found.setdefault(index, [])
            for _, other in active_blockers:
                o = items[other]
                if o.key == item.key or not o.s < item.e:
                    continue
                mine.append(other)
                if other in found:  # the other one is a subject too: it sees this one
                    found[other].append(index)
        elif blocker:
            for _, other in active_subjects:
                o = items[other]
                if o.key != item.key and item.s < o.e:
                    found[other].append(index)
        # zero-length items never overlap anything later; keep them out of the heaps
        if item.e > item.s:
            if blocker:
                heapq.heappush(active_blockers, (item.e, index))
            if subject:
                heapq.heappush(active_subjects, (item.e, index))
    return found


# ---- the detector -------------------------------------------------------------------------------


def detect(
    events: Sequence[Event],
    interviews: Mapping[str, Classification],
    config: Config,
    now: datetime,
    marked_missed: Collection[str] = (),
) -> list[Risk]:
    """Every risk for every interview, sorted by interview start, key, kind and severity."""
    now = ensure_aware(now, "now").astimezone(UTC)  # elapsed-time arithmetic, never wall-clock
    tz = config.user.zone
    now_s = now.timestamp()
    items = _items(events, interviews, tz)
    overlaps = _overlaps(items, now_s)
    marked = set(marked_missed)
    ignored = {k.strip().lower() for k in config.detection.ignore_kinds}
    neighbours = _Neighbours(items)

    out: list[tuple[tuple[float, str, int, int, float, str, str], Risk]] = []

    def add(item: _Item, risk: Risk, other: _Item | None = None) -> None:
        if risk.kind.value in ignored:
            return
        order = (
            item.s,
            item.key,
            KIND_ORDER[risk.kind],
            SEVERITY_ORDER[risk.severity],
            other.s if other else 0.0,
            other.key if other else "",
            risk.evidence,
        )
        out.append((order, risk))

    for index, item in enumerate(items):
        if not item.interview:
            continue
        found = overlaps.get(index, ())
        if len(found) > 1:
            found = sorted(set(found), key=lambda j: (items[j].s, items[j].key))
        others = [items[j] for j in found]
        if item.attends and item.e > now_s:
            shown, rest = _worst_overlaps(item, others)
            for other in shown:
                risk = _overlap_risk(item, other, tz)
                if risk is not None:
                    add(item, risk, other)
            for risk in _summaries(item, rest, tz):
                add(item, risk)
            if not item.all_day:
                for risk, other in neighbours.risks(item, config, tz):
                    add(item, risk, other)
                odd = _odd_hour(item, config)
                if odd is not None:
                    add(item, odd)
                join = _no_join_info(item, config, now)
                if join is not None:
                    add(item, join)
                mismatch = time_mismatch(item.event, item.start, config)
                if mismatch is not None:
                    add(item, mismatch)
        missed = _missed(item, others, config, now, marked)
        if missed is not None:
            add(item, missed[0], missed[1])

    out.sort(key=lambda pair: pair[0])
    return [risk for _, risk in out]


def _overlap_risk(item: _Item, other: _Item, tz: tzinfo) -> Risk | None:
    key = item.key
    if other.interview and other.attends and not other.all_day and not item.all_day:
        return Risk(
            RiskKind.INTERVIEW_CLASH,
            Severity.CRITICAL,
            key,
            f"overlaps another interview, {title_text(other.event)} ({_when(other, tz)})",
            other_key=other.key,
            other_is_interview=True,
            cause=RiskCause.INTERVIEW_CLASH,
        )
    if other.ooo:
        ev = other.event
        what = (
            "your out-of-office"
            if ev.event_type is EventType.OUT_OF_OFFICE or ev.show_as is ShowAs.OUT_OF_OFFICE
            else "the all-day busy event"
        )
        return Risk(
            RiskKind.OUT_OF_OFFICE,
            Severity.CRITICAL,
            key,
            f"falls inside {what} {title_text(ev)} ({_when(other, tz)})",
            other_key=other.key,
            other_is_interview=other.interview,
            cause=RiskCause.OUT_OF_OFFICE,
        )
    if item.all_day or not other.blocks or other.all_day:
        return None
    ev = other.event
    soft = _soft(ev)
    severity = Severity.WARNING if soft else Severity.CRITICAL
    note = f", which you marked {soft}" if soft else ""
    return Risk(
        RiskKind.DOUBLE_BOOKED,
        severity,
        key,
        f"overlaps {title_text(ev)} ({_when(other, tz)}){note}",
        other_key=other.key,
        other_is_interview=other.interview,
        cause=RiskCause.DOUBLE_BOOKING,
    )


def _overlap_rank(item: _Item, other: _Item) -> int | None:
    """How serious an overlap is (0 = another interview … 3 = a soft commitment); None: no risk.

    The same decision as :func:`_overlap_risk`, from the items' flags alone, so that the worst
    overlaps can be chosen without building a risk for every one of them.
    """
    if other.interview and other.attends and not other.all_day and not item.all_day:
        return 0
    if other.ooo:
        return 1
    if item.all_day or not other.blocks or other.all_day:
        return None
    return 3 if _soft(other.event) else 2


def _worst_overlaps(item: _Item, others: list[_Item]) -> tuple[list[_Item], list[tuple[int, _Item]]]:
    """The overlaps reported one by one (the most serious, then the earliest) and the rest.

    A dense calendar can put hundreds of events over one interview; each would be a risk of its
    own, and the risks (not the sweep) were what made a clash-heavy calendar slow. Past
    :data:`MAX_OVERLAPS` the rest are summarised by kind, so the output per interview is bounded.
    """
    if len(others) <= MAX_OVERLAPS:
        return others, []
    ranked = [(rank, other) for other in others if (rank := _overlap_rank(item, other)) is not None]
    ranked.sort(key=lambda pair: pair[0])  # stable: ties stay in (start, key) order
    return [o for _, o in ranked[:MAX_OVERLAPS]], ranked[MAX_OVERLAPS:]


_SUMMARY = {
    0: (RiskKind.INTERVIEW_CLASH, Severity.CRITICAL, RiskCause.INTERVIEW_CLASH, "other interviews"),
    1: (RiskKind.OUT_OF_OFFICE, Severity.CRITICAL, RiskCause.OUT_OF_OFFICE, "more out-of-office or all-day busy events"),
    2: (RiskKind.DOUBLE_BOOKED, Severity.CRITICAL, RiskCause.DOUBLE_BOOKING, "more events"),
    3: (RiskKind.DOUBLE_BOOKED, Severity.WARNING, RiskCause.DOUBLE_BOOKING, "more tentative or focus-time events"),
}


def _summaries(item: _Item, rest: list[tuple[int, _Item]], tz: tzinfo) -> list[Risk]:
    """One risk per kind for the overlaps past the cap: how many, and when the first and last are."""
    groups: dict[int, tuple[int, _Item, _Item]] = {}  # rank -> (count, first to start, last to end)
    for rank, other in rest:
        seen = groups.get(rank)
        if seen is None:
            groups[rank] = (1, other, other)
            continue
        count, first, last = seen
        groups[rank] = (count + 1, first if (first.s, first.key) <= (other.s, other.key) else other,
                        last if (last.e, last.key) >= (other.e, other.key) else other)
    out = []
    for rank in sorted(groups):
        count, first, last = groups[rank]
        kind, severity, cause, what = _SUMMARY[rank]
        verb = "falls inside" if rank == 1 else "overlaps"
        span = when_text(first.first, last.last, tz)
        out.append(Risk(kind, severity, item.key, f"also {verb} {count} {what} ({span})", cause=cause))
    return out


def _soft(event: Event) -> str:
    """Why a busy event is only a soft commitment ('' when it is a firm one)."""
    if event.show_as is ShowAs.TENTATIVE or event.self_response is Response.TENTATIVE:
        return "tentative"
    if event.event_type is EventType.FOCUS_TIME:
        return "as focus time"
    return ""


class _Neighbours:
    """Timed blocking events sorted by end and by start, for gap look-ups by binary search."""

    def __init__(self, items: list[_Item]) -> None:
        timed = [i for i in items if not i.all_day and i.attends and (i.blocks or i.interview)]
        self.by_end = sorted(timed, key=_BY_END)  # stable: ties stay in (s, key) order
        self.ends = [i.e for i in self.by_end]
        self.by_start = timed  # items arrive sorted by (s, e, key)
        self.starts = [i.s for i in timed]

    def risks(self, item: _Item, config: Config, tz: tzinfo) -> list[tuple[Risk, _Item]]:
        buffers = config.buffers
        physical = in_person(item.event)
        travel = buffers.travel_minutes * 60.0 if physical else 0.0
        out: list[tuple[Risk, _Item]] = []
        before, after = buffers.before_minutes * 60.0, buffers.after_minutes * 60.0
        # before the interview: neighbours ending in (start - window, start], closest first
        window = max(before, travel)
        if window > 0:
            hi = bisect_right(self.ends, item.s)
            lo = bisect_right(self.ends, item.s - window)
            near = [self.by_end[i] for i in range(hi - 1, max(lo, hi - NEIGHBOUR_LIMIT) - 1, -1)]
            risk = self._side(item, near, before, travel, physical, "before", config, tz)
            if risk is not None:
                out.append(risk)
        window = max(after, travel)
        if window > 0:
            lo = bisect_left(self.starts, item.e)
            hi = bisect_left(self.starts, item.e + window)
            near = [self.by_start[i] for i in range(lo, min(hi, lo + NEIGHBOUR_LIMIT))]
            risk = self._side(item, near, after, travel, physical, "after", config, tz)
            if risk is not None:
                out.append(risk)
        return out

    @staticmethod
    def _side(
        item: _Item,
        near: list[_Item],
        buffer: float,
        travel: float,
        physical: bool,
        side: str,
        config: Config,
        tz: tzinfo,
    ) -> tuple[Risk, _Item] | None:
        candidates = [
            n for n in near if n.key != item.key and not (n.s < item.e and item.s < n.e) and n is not item
        ]

        def gap(n: _Item) -> float:
            return item.s - n.e if side == "before" else n.s - item.e

        candidates.sort(key=lambda n: (gap(n), n.key))
        if physical and travel > 0:
            for n in candidates:
                g = gap(n)
                if g < travel and is_physical(n.event.location) and not _same_place(
                    n.event.location, item.event.location
                ):
                    minutes = int(g // 60)
                    severity = Severity.CRITICAL if g < travel / 2 else Severity.WARNING
                    direction = "after" if side == "before" else "before"
                    return (
                        Risk(
                            RiskKind.TRAVEL,
                            severity,
                            item.key,
                            f"only {minutes} min to travel {direction} {title_text(n.event)} "
                            f"({_when(n, tz)}) at another place; you wanted "
                            f"{config.buffers.travel_minutes} min",
                            other_key=n.key,
                            other_is_interview=n.interview,
                            cause=RiskCause.TRAVEL,
                        ),
                        n,
                    )
        if buffer > 0 and candidates:
            n = candidates[0]
            g = gap(n)
            if g < buffer:
                minutes = int(g // 60)
                wanted = config.buffers.before_minutes if side == "before" else config.buffers.after_minutes
                return (
                    Risk(
                        RiskKind.TIGHT_BUFFER,
                        Severity.WARNING,
                        item.key,
                        f"only {minutes} min {side} it: {title_text(n.event)} ({_when(n, tz)}); "
                        f"you wanted {wanted} min",
                        other_key=n.key,
                        other_is_interview=n.interview,
                        cause=RiskCause.BUFFER,
                    ),
                    n,
                )
        return None


def _odd_hour(item: _Item, config: Config) -> Risk | None:
    tz = config.user.zone
    waking = config.detection.waking_hours
    local = item.start.astimezone(tz)
    if waking.start <= local.time() < waking.end:
        return None
    mistake, theirs = timezone_mistake(item.event, item.start, config)
    label = local.tzname() or config.user.timezone
    if mistake:
        return Risk(
            RiskKind.ODD_HOUR,
            Severity.CRITICAL,
            item.key,
            f"starts {local:%H:%M} {label} your time, outside your waking hours; it was set up as "
            f"{theirs}: likely a timezone mix-up",
            cause=RiskCause.TIMEZONE,
        )
    return Risk(
        RiskKind.ODD_HOUR,
        Severity.WARNING,
        item.key,
        f"starts {local:%H:%M} {label} your time, outside your waking hours "
        f"({waking.start:%H:%M}–{waking.end:%H:%M})",
        cause=RiskCause.ODD_HOUR,
    )


def _no_join_info(item: _Item, config: Config, now: datetime) -> Risk | None:
    hours = config.detection.join_info_hours
    if not (now < item.start <= now + timedelta(hours=hours)):
        return None
    if has_join_info(item.event):
        return None
    left = item.start - now
    severity = Severity.CRITICAL if left <= timedelta(hours=2) else Severity.WARNING
    in_hours = max(1, round(left.total_seconds() / 3600))
    return Risk(
        RiskKind.NO_JOIN_INFO,
        severity,
        item.key,
        f"starts in about {in_hours} h and has no video link, phone number or address",
        cause=RiskCause.NO_JOIN_INFO,
    )


def _tagged(event: Event, tag: str) -> bool:
    word = tag.strip().casefold()
    if not word:
        return False
    if any(c.strip().casefold() == word for c in event.categories):
        return True
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", event.title.casefold()) is not None


def _missed(
    item: _Item, others: list[_Item], config: Config, now: datetime, marked: set[str]
) -> tuple[Risk, _Item | None] | None:
    event = item.event
    if event.cancelled or item.start > now:
        return None
    declared = item.key in marked
    if not declared and item.start < now - MISSED_LOOKBACK:
        return None
    tz = config.user.zone
    evidence: list[str] = []
    cause = RiskCause.NONE
    covering: _Item | None = None
    if item.attends and now >= item.start + timedelta(minutes=config.missed.grace_minutes):
        covering = _covering(item, others, tz)
        if covering is not None:
            if covering.interview and covering.attends and not covering.all_day:
                cause = RiskCause.INTERVIEW_CLASH
                evidence.append(
                    f"at its start you were in another interview, {title_text(covering.event)} "
                    f"({_when(covering, tz)})"
                )
            elif covering.ooo:
                cause = RiskCause.OUT_OF_OFFICE
                evidence.append(f"it fell inside your time off, {title_text(covering.event)} ({_when(covering, tz)})")
            else:
                cause = RiskCause.DOUBLE_BOOKING
                evidence.append(f"at its start you were in {title_text(covering.event)} ({_when(covering, tz)})")
    if (
        event.self_response is Response.DECLINED
        and event.updated is not None
        and event.updated.astimezone(UTC) > item.start
    ):
        evidence.append("you declined it after it had started")
    if _tagged(event, config.missed.tag):
        evidence.append(f'it is tagged "{config.missed.tag}"')
    if declared:
        evidence.append("you said you missed it")
    if not evidence:
        return None
    if not cause:
        mistake, theirs = timezone_mistake(event, item.start, config)
        local = item.start.astimezone(tz)
        waking = config.detection.waking_hours
        odd = not (waking.start <= local.time() < waking.end)
        cause = RiskCause.TIMEZONE if mistake and odd and not item.all_day else RiskCause.USER_DECLARED
        if cause is RiskCause.TIMEZONE:
            evidence.append(f"it was at {local:%H:%M} your time ({theirs}): likely a timezone mix-up")
    return (
        Risk(
            RiskKind.MISSED,
            Severity.CRITICAL,
            item.key,
            "missed: " + "; ".join(evidence),
            other_key=covering.key if covering else None,
            other_is_interview=bool(covering and covering.interview),
            cause=cause,
        ),
        covering,
    )


def _covering(item: _Item, others: list[_Item], tz: tzinfo) -> _Item | None:
    """The firm commitment the user was in when the interview started, if any."""
    for other in others:
        if not (other.s <= item.s < other.e) or not other.attends:
            continue
        if other.interview and not other.all_day:
            if other.s == item.s and reschedule_first(item.event, other.event, tz) is not item.event:
                continue  # both started together: the user went to this one and missed the other
            return other
        if other.ooo:
            return other
        if other.blocks and not _soft(other.event) and not item.all_day:
            return other
    return None
