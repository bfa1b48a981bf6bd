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


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: a cache key
class _Margins:
    """Busy spans grown by a (before, after) margin, merged, with a range-maximum table built on demand."""

    before: timedelta
    after: timedelta
    gstarts: list[datetime]
    gends: list[datetime]
    mstarts: list[datetime]
    mends: list[datetime]
    table: list[_RangeMax]  # empty until first needed (a list so the frozen object can cache it)


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
        self._margin_sets: dict[tuple[timedelta, timedelta], _Margins] = {}
        self._where: dict[str, list[int]] = {}
        for index, (_, _, key, sid) in enumerate(self._spans):
            self._where.setdefault(key, []).append(index)
            if sid != key:
                self._where.setdefault(sid, []).append(index)
        self._cache: dict[tuple[datetime, timedelta, int, _Margins, time, time],
                          tuple[list[_Candidate], list[list[Slot]]]] = {}
        before = timedelta(minutes=config.buffers.before_minutes)
        after = timedelta(minutes=config.buffers.after_minutes)
        self._before, self._after = before, after
        # Slots already proposed to someone else in this plan, as sorted (start, end) instants: a
        # second employer must not be offered a time the first one may accept.
        self._reserved: list[tuple[datetime, datetime]] = []
        self._longest_reserved = timedelta(0)

    def _margins(self, travel: bool) -> _Margins:
        """The busy spans grown by the buffers (by the travel time too, for an interview to travel to)."""
        before, after = self._before, self._after
        if travel:
            # An onsite interview needs the way there and back around whatever else is on:
            # it is not offered half an hour after a video call ends.
            gap = timedelta(minutes=self.config.buffers.travel_minutes)
            before, after = max(before, gap), max(after, gap)
        found = self._margin_sets.get((before, after))
        if found is None:
            # A slot [s, e) is free when no busy [bs, be) comes within `after` of its end or `before` of
            # its start: grow each busy interval by those margins and ask for no overlap.
            gstarts = [bs - after for bs, _, _, _ in self._spans]  # sorted, as _spans is
            gends = [be + before for _, be, _, _ in self._spans]
            mstarts, mends = _merge(list(zip(gstarts, gends, strict=True)))
            found = _Margins(before, after, gstarts, gends, mstarts, mends, [])
            self._margin_sets[(before, after)] = found
        return found

    def is_free(self, slot: Slot, *, ignore: Collection[str] = (), travel: bool = False) -> bool:
        """True when ``slot`` keeps the buffers clear of every blocking event not in ``ignore``,
        and of every slot already offered."""
        m = self._margins(travel)
        start, end = slot.start.astimezone(UTC), slot.end.astimezone(UTC)
        ignored = sorted({i for name in ignore for i in self._where.get(name, ())})
        free = self._free_without(m, start, end, ignored) if ignored else _free(start, end, m.mstarts, m.mends)
        return free and not self._is_reserved(slot)

    def hours_overlap(self, their_zone: tzinfo | None, now: datetime) -> bool:
        """True when the user's working hours and the same hours in ``their_zone`` share some time this week."""
        if their_zone is None:
            return True
        hours = self.config.working_hours
        working = {WEEKDAYS.index(d) for d in hours.days}
        first = ensure_aware(now, "now").astimezone(self.tz).date()

        def windows(tz: tzinfo) -> list[tuple[datetime, datetime]]:
            out = []
            for offset in range(-1, 9):
                day = first + timedelta(days=offset)
                if day.weekday() in working:
                    out.append((datetime.combine(day, hours.start, tzinfo=tz).astimezone(UTC),
                                datetime.combine(day, hours.end, tzinfo=tz).astimezone(UTC)))
            return out

        theirs = windows(their_zone)
        return any(s < te and ts < e for s, e in windows(self.tz)[1:-1] for ts, te in theirs)

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
        travel: bool = False,
    ) -> list[Slot]:
        """See :func:`find_slots`; ``horizon_days`` overrides ``slots.horizon_days``; ``travel`` keeps
        ``buffers.travel_minutes`` clear around every other commitment (an interview to travel to)."""
        now = ensure_aware(now, "now").astimezone(UTC)  # elapsed-time arithmetic, never wall-clock
        if duration <= timedelta(0):
            raise ValueError(f"slot duration must be positive, got {duration}")
        config = self.config
        wanted = config.slots.count if count is None else count
        if wanted <= 0:
            return []
        margins = self._margins(travel)
        hours = config.working_hours
        overlap = self.hours_overlap(their_zone, now)
        # With no shared working hour, the least bad times are looked for across the user's waking day.
        window = (hours.start, hours.end) if overlap else (config.detection.waking_hours.start,
                                                          config.detection.waking_hours.end)
        candidates, days = self._candidates(now, duration, horizon_days or config.slots.horizon_days, margins, window)
        ignored = sorted({i for name in ignore for i in self._where.get(name, ())})
        if ignored:
            freed = self._freed(margins, candidates, ignored, duration)
            if freed:
                days = _by_day([c for i, c in enumerate(candidates) if c.free or i in freed])
        allowed = (lambda slot: not self._is_reserved(slot)) if self._reserved else None
        if their_zone is None:
            return _choose(days, wanted, config.slots.spread, allowed=allowed)
        # Prefer times inside both working days; failing that, the times closest to the recipient's
        # working hours (each day's best first), then their waking hours, then anything.
        chosen: list[Slot] = []
        costs = {s: self._cost(s, their_zone) for found in days for s in found}
        for tier in range(len(_TIERS) + 2):
            pool = [sorted((s for s in found if _tier_of(costs[s]) <= tier), key=lambda s: (costs[s], s.start))
                    for found in days]
            chosen = _choose([p for p in pool if p], wanted, config.slots.spread, chosen, allowed=allowed)
            if len(chosen) >= wanted:
                break
        return chosen

    def _candidates(self, now: datetime, duration: timedelta, horizon_days: int, margins: _Margins,
                    window: tuple[time, time]) -> tuple[list[_Candidate], list[list[Slot]]]:
        """Every aligned start in ``window`` on working days for this ``now`` and length, sorted;
        and the free ones by day."""
        cache_key = (now, duration, horizon_days, margins, *window)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        config = self.config
        tz = self.tz
        hours = config.working_hours
        open_at, close_at = window
        step = config.slots.step_minutes
        earliest = now + timedelta(hours=config.slots.min_notice_hours)
        horizon = now + timedelta(days=horizon_days)
        starts, ends = margins.mstarts, margins.mends
        out: list[_Candidate] = []
        day = earliest.astimezone(tz).date()
        last_day = horizon.astimezone(tz).date()
        open_minutes = open_at.hour * 60 + open_at.minute
        close_minutes = close_at.hour * 60 + close_at.minute
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
                    if local_end.date() != day or local_end.time() > close_at:
                        continue
                    slot = Slot(begin.astimezone(tz), local_end)
                    out.append(_Candidate(begin, finish, slot, day.toordinal(), _free(begin, finish, starts, ends)))
            day += timedelta(days=1)
        result = (out, _by_day([c for c in out if c.free]))
        if len(self._cache) >= 64:  # one entry per (duration, horizon, margins, window): a handful in practice
            self._cache.pop(next(iter(self._cache)))
        self._cache[cache_key] = result
        return result

    def _freed(self, m: _Margins, candidates: list[_Candidate], ignored: list[int], duration: timedelta) -> set[int]:
        """Indexes of the busy candidates that are free once the ``ignored`` spans are left out."""
        begins = [c.begin for c in candidates]
        out: set[int] = set()
        for index in ignored:
            # candidates overlapping this grown span: begin in (gstart - duration, gend)
            lo = bisect_right(begins, m.gstarts[index] - duration)
            hi = bisect_left(begins, m.gends[index])
            for i in range(lo, hi):
                c = candidates[i]
                if not c.free and i not in out and self._free_without(m, c.begin, c.finish, ignored):
                    out.add(i)
        return out

    def _free_without(self, m: _Margins, start: datetime, end: datetime, ignored: list[int]) -> bool:
        """True when no grown span outside ``ignored`` overlaps [start, end)."""
        if not m.table:
            m.table.append(_RangeMax(m.gends))
        table = m.table[0]
        reach = bisect_left(m.gstarts, end)  # spans [0, reach) start before `end`
        lo = 0
        for index in [*(i for i in ignored if i < reach), reach]:
            latest = table.get(lo, index)
            if latest is not None and latest > start:
                return False
            lo = index + 1
        return True

    def _cost(self, slot: Slot, their_zone: tzinfo) -> tuple[int, int]:
        """How bad ``slot`` is: (minutes it reaches past the working day on both sides, outside their waking hours).

        The recipient's working week and hours are taken to be the user's (``working_hours``) read
        in their zone; the user's side counts only when slots were widened to the waking day."""
        hours = self.config.working_hours
        waking = self.config.detection.waking_hours
        minutes = 0
        asleep = 0
        for tz, mine in ((their_zone, False), (self.tz, True)):
            start, end = slot.start.astimezone(tz), slot.end.astimezone(tz)
            day_start = datetime.combine(start.date(), hours.start, tzinfo=tz)
            day_end = datetime.combine(start.date(), hours.end, tzinfo=tz)
            if WEEKDAYS[start.weekday()] not in hours.days:
                minutes += 24 * 60
            # how far the slot reaches outside the working day: 17:00–18:00 for a 17:30 close is 30 min
            outside = max(timedelta(0), day_start - start) + max(timedelta(0), end - day_end)
            minutes += int(outside.total_seconds() // 60)
            if not mine and (start.date() != end.date() or not (waking.start <= start.time() and end.time() <= waking.end)):
                asleep = 1
        return minutes, asleep


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

    With ``their_zone`` (the recipient's), slots that are also working hours there are preferred,
    then those closest to them while they are awake; when the two working days share no hour, the
    least bad times in the user's waking hours are chosen."""
    return SlotFinder(events, config).find(now, duration, count=count, ignore=ignore, their_zone=their_zone)


_TIERS = (0, 60, 120, 180, 240, 360)  # minutes past the working days, while the recipient is awake


def _tier_of(cost: tuple[int, int]) -> int:
    """0: inside both working days; then by how far past them (while they are awake); then awake; then any."""
    minutes, asleep = cost
    if asleep:
        return len(_TIERS) + 1
    return next((i for i, limit in enumerate(_TIERS) if minutes <= limit), len(_TIERS))


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
