"""Free slots to propose for a rescheduled interview: working hours, notice, buffers, DST-safe.

Candidate starts are wall-clock times in the user's zone (``09:00`` is 09:00 local on both sides of a
DST change), aligned to ``slots.step_minutes`` from midnight. A local time that does not exist (the
skipped hour) or exists twice (the repeated hour) is never proposed: the first cannot be met and the
second reads two ways. Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Sequence
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from daemon.config import WEEKDAYS, Config
from daemon.model import Event, Slot, ensure_aware

UTC = timezone.utc


def local_instant(day: date, at: time, tz: tzinfo) -> datetime | None:
    """The one instant that reads ``day at`` in ``tz``; None if that wall time is skipped or repeated."""
    first = datetime.combine(day, at, tzinfo=tz)
    second = first.replace(fold=1)
    if first.utcoffset() != second.utcoffset():
        return None  # ambiguous (repeated hour) or nonexistent (skipped hour): PEP 495 folds differ
    back = first.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != first.replace(tzinfo=None):
        return None  # nonexistent (fixed-offset zones never get here)
    return first


def busy_intervals(
    events: Sequence[Event], tz: tzinfo, ignore: Collection[str] = ()
) -> list[tuple[datetime, datetime]]:
    """Spans (UTC) of every event that blocks the user's time, all-day ones in ``tz``, sorted."""
    ignored = set(ignore)
    return sorted((s, e) for s, e, key, sid in _spans(events, tz) if key not in ignored and sid not in ignored)


def _spans(events: Sequence[Event], tz: tzinfo) -> list[tuple[datetime, datetime, str, str]]:
    spans: list[tuple[datetime, datetime, str, str]] = []
    for event in events:
        try:
            if not event.blocks_time:
                continue
            start, end = event.span(tz)
            start, end = start.astimezone(UTC), end.astimezone(UTC)
        except (ValueError, TypeError, OverflowError, AttributeError):
            continue  # a malformed event affects only itself
        spans.append((start, max(start, end), event.occurrence_key, event.source_id))
    spans.sort()
    return spans


def _merge(spans: list[tuple[datetime, datetime]]) -> tuple[list[datetime], list[datetime]]:
    """Merge sorted intervals into disjoint ones; returned as parallel start/end lists."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for start, end in spans:
        if ends and start <= ends[-1]:
            if end > ends[-1]:
                ends[-1] = end
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _free(start: datetime, end: datetime, starts: list[datetime], ends: list[datetime]) -> bool:
    """True when [start, end) overlaps no merged busy interval."""
    i = bisect_right(starts, start) - 1
    if i >= 0 and ends[i] > start:
        return False
    j = i + 1
    return not (j < len(starts) and starts[j] < end)


class SlotFinder:
    """Slot search over one calendar; the busy spans are computed once and reused for every query."""

    def __init__(self, events: Sequence[Event], config: Config) -> None:
        self.config = config
        self.tz = config.user.zone
        self._spans = _spans(events, self.tz)

    def find(
        self,
        now: datetime,
        duration: timedelta,
        *,
        count: int | None = None,
        ignore: Collection[str] = (),
        their_zone: tzinfo | None = None,
    ) -> list[Slot]:
        """See :func:`find_slots`."""
        now = ensure_aware(now, "now").astimezone(UTC)  # elapsed-time arithmetic, never wall-clock
        if duration <= timedelta(0):
            raise ValueError(f"slot duration must be positive, got {duration}")
        config = self.config
        wanted = config.slots.count if count is None else count
        if wanted <= 0:
            return []
        tz = self.tz
        hours = config.working_hours
        step = config.slots.step_minutes
        earliest = now + timedelta(hours=config.slots.min_notice_hours)
        horizon = now + timedelta(days=config.slots.horizon_days)
        before = timedelta(minutes=config.buffers.before_minutes)
        after = timedelta(minutes=config.buffers.after_minutes)

        # A slot [s, e) is free when no busy [bs, be) comes within `after` of its end or `before` of
        # its start: grow each busy interval by those margins and ask for no overlap.
        ignored = set(ignore)
        grown = [
            (bs - after, be + before)
            for bs, be, key, sid in self._spans
            if key not in ignored and sid not in ignored and be + before > earliest and bs - after < horizon + duration
        ]
        starts, ends = _merge(grown)  # _spans is sorted by start, so `grown` is too

        days: list[list[Slot]] = []
        day = earliest.astimezone(tz).date()
        last_day = horizon.astimezone(tz).date()
        open_minutes = hours.start.hour * 60 + hours.start.minute
        close_minutes = hours.end.hour * 60 + hours.end.minute
        first_minutes = -(-open_minutes // step) * step  # the first aligned start at or after opening
        working = {WEEKDAYS.index(d) for d in hours.days}
        while day <= last_day:
            if day.weekday() in working:
                found: list[Slot] = []
                for minutes in range(first_minutes, close_minutes, step):
                    local = local_instant(day, time(minutes // 60, minutes % 60), tz)
                    if local is None:
                        continue
                    begin = local.astimezone(UTC)
                    finish = begin + duration
                    if begin < earliest or begin >= horizon:
                        continue
                    local_end = finish.astimezone(tz)
                    if local_end.date() != day or local_end.time() > hours.end:
                        continue
                    if _free(begin, finish, starts, ends):
                        found.append(Slot(begin.astimezone(tz), local_end))
                if found:
                    days.append(found)
            day += timedelta(days=1)
        if their_zone is None:
            return _choose(days, wanted, config.slots.spread)
        # Prefer times that are also working hours for the recipient, then waking hours for them.
        chosen: list[Slot] = []
        for tier in (0, 1, 2):
            pool = [[s for s in found if self._tier(s, their_zone) <= tier] for found in days]
            chosen = _choose([p for p in pool if p], wanted, config.slots.spread, chosen)
            if len(chosen) >= wanted:
                break
        return chosen

    def _tier(self, slot: Slot, their_zone: tzinfo) -> int:
        """0: inside working hours in the recipient's zone too; 1: inside their waking hours; 2: neither."""
        start, end = slot.start.astimezone(their_zone), slot.end.astimezone(their_zone)
        if start.date() != end.date():
            return 2
        hours = self.config.working_hours
        if WEEKDAYS[start.weekday()] in hours.days and hours.start <= start.time() and end.time() <= hours.end:
            return 0
        waking = self.config.detection.waking_hours
        if waking.start <= start.time() and end.time() <= waking.end:
            return 1
        return 2


def find_slots(
    events: Sequence[Event],
    config: Config,
    now: datetime,
    duration: timedelta,
    *,
    count: int | None = None,
    ignore: Collection[str] = (),
    their_zone: tzinfo | None = None,
) -> list[Slot]:
    """Up to ``count`` free slots of ``duration`` in working hours, earliest first (one per day first
    when ``slots.spread``), each keeping the configured buffers clear of every blocking event.

    With ``their_zone`` (the recipient's), slots that are also working (then waking) hours there
    are preferred."""
    return SlotFinder(events, config).find(now, duration, count=count, ignore=ignore, their_zone=their_zone)


def _choose(days: list[list[Slot]], wanted: int, spread: bool, already: Sequence[Slot] = ()) -> list[Slot]:
    """Pick slots: with ``spread`` the earliest of each day first, then doubling up; never overlapping."""
    chosen: list[Slot] = list(already)
    if len(chosen) >= wanted:
        return sorted(chosen, key=lambda s: s.start)

    def fits(slot: Slot) -> bool:
        return all(slot.end <= c.start or slot.start >= c.end for c in chosen)

    if spread:
        rounds = max((len(d) for d in days), default=0)
        for r in range(rounds):
            for found in days:
                # Round r takes each day's next slot that does not overlap what was already chosen.
                taken = sum(1 for c in chosen if c.start.date() == found[0].start.date())
                if taken != r:
                    continue
                for slot in found:
                    if fits(slot):
                        chosen.append(slot)
                        break
                if len(chosen) >= wanted:
                    return sorted(chosen, key=lambda s: s.start)
    else:
        for found in days:
            for slot in found:
                if fits(slot):
                    chosen.append(slot)
                    if len(chosen) >= wanted:
                        return sorted(chosen, key=lambda s: s.start)
    return sorted(chosen, key=lambda s: s.start)
