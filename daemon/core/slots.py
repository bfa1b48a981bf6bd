"""Free slots to propose for a rescheduled interview: working hours, notice, buffers, DST-safe.

Candidate starts are wall-clock times in the user's zone (``09:00`` is 09:00 local on both sides of a
DST change), aligned to ``slots.step_minutes`` from midnight. A local time that does not exist (the
skipped hour) or exists twice (the repeated hour) is never proposed: the first cannot be met and the
second reads two ways. Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from daemon.config import WEEKDAYS, Config
from daemon.core.model import Event, Slot, ensure_aware

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


class _RangeMax:
    """Sparse table: the latest end over any index range in O(1) after an O(n log n) build."""

    def __init__(self, values: list[datetime]) -> None:
        self.levels = [values]
        width = 1
        while 2 * width <= len(values):
            prev = self.levels[-1]
            self.levels.append([a if a >= b else b for a, b in zip(prev, prev[width:], strict=False)])
            width *= 2

    def get(self, lo: int, hi: int) -> datetime | None:
        """max(values[lo:hi]), None for an empty range."""
        if hi <= lo:
            return None
        level = (hi - lo).bit_length() - 1
        row = self.levels[level]
        a, b = row[lo], row[hi - (1 << level)]
        return a if a >= b else b


@dataclass(frozen=True, slots=True)
class _Candidate:
    begin: datetime  # UTC
    finish: datetime  # UTC
    slot: Slot  # in the user's zone
    day: int  # ordinal of the local date
    free: bool  # free of every blocking event (none ignored)


class SlotFinder:
    """Slot search over one calendar, built once and queried per interview.

    The busy spans, grown by the buffers, are merged once; the candidate starts for a given ``now``
    and duration are computed once. A query that ignores events (the interview being moved) only
    re-checks the few candidates those events touch, with a range-maximum table over the spans, so
    planning for many clashing interviews stays O((n + m) log n) rather than O(n·m).
    """

    def __init__(self, events: Sequence[Event], config: Config) -> None:
        self.config = config
        self.tz = config.user.zone
        self._spans = _spans(events, self.tz)
        before = timedelta(minutes=config.buffers.before_minutes)
        after = timedelta(minutes=config.buffers.after_minutes)
        # A slot [s, e) is free when no busy [bs, be) comes within `after` of its end or `before` of
        # its start: grow each busy interval by those margins and ask for no overlap.
        self._gstarts = [bs - after for bs, _, _, _ in self._spans]  # sorted, as _spans is
        self._gends = [be + before for _, be, _, _ in self._spans]
        self._mstarts, self._mends = _merge(list(zip(self._gstarts, self._gends, strict=True)))
        self._where: dict[str, list[int]] = {}
        for index, (_, _, key, sid) in enumerate(self._spans):
            self._where.setdefault(key, []).append(index)
            if sid != key:
                self._where.setdefault(sid, []).append(index)
        self._table: _RangeMax | None = None
        self._cache: dict[tuple[datetime, timedelta, int], tuple[list[_Candidate], list[list[Slot]]]] = {}
        self._before, self._after = before, after
        # Slots already proposed to someone else in this plan, as sorted (start, end) instants: a
        # second employer must not be offered a time the first one may accept.
        self._reserved: list[tuple[datetime, datetime]] = []
        self._longest_reserved = timedelta(0)

    def reserve(self, slots: Sequence[Slot]) -> None:
        """Keep ``slots`` (offered in one draft) out of the answers of later :meth:`find` calls."""
        for slot in slots:
            start, end = slot.start.astimezone(UTC), slot.end.astimezone(UTC)
            insort(self._reserved, (start, end))
            self._longest_reserved = max(self._longest_reserved, end - start)

    def _is_reserved(self, slot: Slot) -> bool:
        """True when ``slot`` comes within the buffers of a slot already offered elsewhere."""
        if not self._reserved:
            return False
        start, end = slot.start.astimezone(UTC), slot.end.astimezone(UTC)
        # Offered [rs, re) grown by the buffers overlaps [start, end) iff rs - after < end and
        # re + before > start; as re <= rs + longest, only rs in (start - before - longest, end + after) matter.
        lo = bisect_right(self._reserved, (start - self._before - self._longest_reserved, end))
        hi = bisect_left(self._reserved, (end + self._after, start))
        return any(rs - self._after < end and re + self._before > start for rs, re in self._reserved[lo:hi])

    def find(
        self,
        now: datetime,
        duration: timedelta,
        *,
        count: int | None = None,
        ignore: Collection[str] = (),
        their_zone: tzinfo | None = None,
        horizon_days: int | None = None,
    ) -> list[Slot]:
        """See :func:`find_slots`; ``horizon_days`` overrides ``slots.horizon_days``."""
        now = ensure_aware(now, "now").astimezone(UTC)  # elapsed-time arithmetic, never wall-clock
        if duration <= timedelta(0):
            raise ValueError(f"slot duration must be positive, got {duration}")
        config = self.config
        wanted = config.slots.count if count is None else count
        if wanted <= 0:
            return []
        candidates, days = self._candidates(now, duration, horizon_days or config.slots.horizon_days)
        ignored = sorted({i for name in ignore for i in self._where.get(name, ())})
        if ignored:
            freed = self._freed(candidates, ignored, duration)
            if freed:
                days = _by_day([c for i, c in enumerate(candidates) if c.free or i in freed])
        allowed = (lambda slot: not self._is_reserved(slot)) if self._reserved else None
        if their_zone is None:
            return _choose(days, wanted, config.slots.spread, allowed=allowed)
        # Prefer times that are also working hours for the recipient, then waking hours for them.
        chosen: list[Slot] = []
        for tier in (0, 1, 2):
            pool = [[s for s in found if self._tier(s, their_zone) <= tier] for found in days]
            chosen = _choose([p for p in pool if p], wanted, config.slots.spread, chosen, allowed=allowed)
            if len(chosen) >= wanted:
                break
        return chosen

    def _candidates(self, now: datetime, duration: timedelta,
                    horizon_days: int) -> tuple[list[_Candidate], list[list[Slot]]]:
        """Every aligned start in working hours for this ``now`` and length, sorted; and the free ones by day."""
        cached = self._cache.get((now, duration, horizon_days))
        if cached is not None:
            return cached
        config = self.config
        tz = self.tz
        hours = config.working_hours
        step = config.slots.step_minutes
        earliest = now + timedelta(hours=config.slots.min_notice_hours)
        horizon = now + timedelta(days=horizon_days)
        starts, ends = self._mstarts, self._mends
        out: list[_Candidate] = []
        day = earliest.astimezone(tz).date()
        last_day = horizon.astimezone(tz).date()
        open_minutes = hours.start.hour * 60 + hours.start.minute
        close_minutes = hours.end.hour * 60 + hours.end.minute
        first_minutes = -(-open_minutes // step) * step  # the first aligned start at or after opening
        working = {WEEKDAYS.index(d) for d in hours.days}
        while day <= last_day:
            if day.weekday() in working:
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
                    slot = Slot(begin.astimezone(tz), local_end)
                    out.append(_Candidate(begin, finish, slot, day.toordinal(), _free(begin, finish, starts, ends)))
            day += timedelta(days=1)
        result = (out, _by_day([c for c in out if c.free]))
        if len(self._cache) >= 64:  # one entry per (duration, horizon): a handful in practice
            self._cache.pop(next(iter(self._cache)))
        self._cache[(now, duration, horizon_days)] = result
        return result

    def _freed(self, candidates: list[_Candidate], ignored: list[int], duration: timedelta) -> set[int]:
        """Indexes of the busy candidates that are free once the ``ignored`` spans are left out."""
        begins = [c.begin for c in candidates]
        out: set[int] = set()
        for index in ignored:
            # candidates overlapping this grown span: begin in (gstart - duration, gend)
            lo = bisect_right(begins, self._gstarts[index] - duration)
            hi = bisect_left(begins, self._gends[index])
            for i in range(lo, hi):
                c = candidates[i]
                if not c.free and i not in out and self._free_without(c.begin, c.finish, ignored):
                    out.add(i)
        return out

    def _free_without(self, start: datetime, end: datetime, ignored: list[int]) -> bool:
        """True when no grown span outside ``ignored`` overlaps [start, end)."""
        if self._table is None:
            self._table = _RangeMax(self._gends)
        reach = bisect_left(self._gstarts, end)  # spans [0, reach) start before `end`
        lo = 0
        for index in [*(i for i in ignored if i < reach), reach]:
            latest = self._table.get(lo, index)
            if latest is not None and latest > start:
                return False
            lo = index + 1
        return True

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


def _by_day(candidates: list[_Candidate]) -> list[list[Slot]]:
    """Slots grouped by local day, in order (candidates arrive sorted by start)."""
    days: list[list[Slot]] = []
    last = None
    for c in candidates:
        if c.day != last:
            days.append([])
            last = c.day
        days[-1].append(c.slot)
    return days


def _choose(days: list[list[Slot]], wanted: int, spread: bool, already: Sequence[Slot] = (),
            allowed: Callable[[Slot], bool] | None = None) -> list[Slot]:
    """Pick slots: with ``spread`` the earliest of each day first, then doubling up; never overlapping.

    ``allowed`` vetoes a slot (checked lazily: only the slots actually considered pay for it)."""
    chosen: list[Slot] = list(already)
    if len(chosen) >= wanted:
        return sorted(chosen, key=lambda s: s.start)

    def fits(slot: Slot) -> bool:
        return all(slot.end <= c.start or slot.start >= c.end for c in chosen) and (allowed is None or allowed(slot))

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
