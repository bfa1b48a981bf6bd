"""Bounded expansion of iCalendar recurrence, shared by every source that expands RRULEs itself.

``recurring_ical_events`` (over ``dateutil.rrule``) walks a rule from its DTSTART, one candidate at
a time, until the end of the query. A hostile or broken series (``FREQ=SECONDLY`` with no end,
``INTERVAL=0``, a rule started decades ago, an occurrence lasting years, a million RDATEs) makes that
walk run for minutes or forever and grow without limit. :func:`expand` screens each series before
expanding it and stops a calendar at its limits:

- a series whose rule is not well-formed (``INTERVAL`` not a positive number, unknown ``FREQ``) is
  skipped;
- a series whose rule needs more than :attr:`Limits.series_steps` candidates to reach the end of
  the query, or would put more than :attr:`Limits.series_occurrences` occurrences in it, is skipped;
- a calendar stops expanding after :attr:`Limits.calendar_steps` candidates,
  :attr:`Limits.calendar_occurrences` occurrences or :attr:`Limits.seconds` of wall-clock time.

Every skipped series gets its own line in ``problems``; the rest of the calendar is still read. The
estimate is an upper bound computed from FREQ, INTERVAL, the BYxxx lists, COUNT, UNTIL, RDATEs and
the event's duration, so a series that passes cannot make the walk run away.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

log = logging.getLogger(f"salvage.{__name__}")

Component = Any  # icalendar components are too loosely typed to be useful here


@dataclass(frozen=True, slots=True)
class Limits:
    """How much recurrence one calendar may expand (defaults and reasons: docs/robustness.md)."""

    series_steps: int = 100_000  # rule candidates one series may need to reach the end of the query
    series_occurrences: int = 2_000  # occurrences of one series inside the query
    calendar_steps: int = 2_000_000  # candidates, summed over the calendar's series
    calendar_occurrences: int = 50_000  # occurrences in the query, summed over the calendar
    seconds: float = 20.0  # wall-clock budget of one calendar's expansion
    batch_steps: int = 20_000  # series are expanded in batches of about this much work


LIMITS = Limits()
# Building one occurrence (a copied component) costs about as much as walking ten rule candidates.
OCCURRENCE_WEIGHT = 10

_PERIOD = {  # the shortest length of one period: most periods fit in a span
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
_DAYS_IN = {"WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}
_DAY_PARTS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH")
_UNIT_PARTS = {  # the BY lists that multiply candidates inside one period of each frequency
    "SECONDLY": (),
    "MINUTELY": ("BYSECOND",),
    "HOURLY": ("BYMINUTE", "BYSECOND"),
}
_TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")


class Unexpandable(ValueError):
    """A series that must not be expanded, with the reason in plain words."""


@dataclass(frozen=True, slots=True)
class Cost:
    """Upper bounds of the work a series needs: rule candidates walked, occurrences in the query."""

    steps: int
    occurrences: int


def series_cost(components: Iterable[Component], start: date, end: date) -> Cost:
    """Upper bounds for expanding one series (the components sharing a UID) over [start, end).

    Raises :class:`Unexpandable` for a rule that cannot be expanded safely at all.
    """
    q_start, q_end = _utc(start), _utc(end)
    steps = 0
    occurrences = 0
    for component in components:
        dtstart = component.get("DTSTART")
        if dtstart is None:
            continue
        try:
            first = _utc(dtstart.dt)
        except (TypeError, ValueError, OverflowError):
            raise Unexpandable("its DTSTART is not a date or date-time") from None
        duration = _duration(component)
        rdates = _count_rdates(component)
        steps += 1 + rdates
        occurrences += 1 + rdates
        for rule in _rules(component):
            rule_steps, rule_occurrences = _rule_cost(rule, first, duration, q_start, q_end)
            steps += rule_steps
            occurrences += rule_occurrences
    return Cost(steps, occurrences)


def expand(
    calendar: Component,
    start: date,
    end: date,
    problems: list[str],
    *,
    limits: Limits = LIMITS,
    clock: Callable[[], float] = time.monotonic,
    describe: Callable[[Component], str] | None = None,
) -> list[Component]:
    """The occurrences of ``calendar``'s VEVENTs in [start, end), within ``limits``.

    A series that is unsafe to expand, or that does not fit in what is left of the calendar's budget,
    is skipped with one line in ``problems`` naming it; every other series is expanded as usual
    (``recurring_ical_events``: RRULE, RDATE, EXDATE, RECURRENCE-ID and RANGE=THISANDFUTURE).
    """
    name = describe or _describe
    began = clock()
    series: dict[str, list[Component]] = {}
    for component in calendar.walk("VEVENT"):
        series.setdefault(_text(component.get("UID")), []).append(component)

    costed: list[tuple[Cost, list[Component]]] = []
    for components in series.values():
        try:
            costed.append((series_cost(components, start, end), components))
        except Unexpandable as exc:
            problems.append(f"skipped {name(components[0])}: {exc}")
    # Cheapest first: single events (an interview is usually one) are never left to the end of a
    # budget that the long series spend.
    costed.sort(key=lambda item: item[0].steps + OCCURRENCE_WEIGHT * item[0].occurrences)

    batches: list[list[list[Component]]] = [[]]
    batch_steps = 0
    total_steps = 0
    for cost, components in costed:
        if cost.steps > limits.series_steps:
            problems.append(f"skipped {name(components[0])}: it repeats too often to expand "
                            f"(about {cost.steps:,} repetitions up to the end of the window; the limit is "
                            f"{limits.series_steps:,})")
            continue
        if cost.occurrences > limits.series_occurrences:
            problems.append(f"skipped {name(components[0])}: it would put about {cost.occurrences:,} occurrences "
                            f"in the window (the limit is {limits.series_occurrences:,})")
            continue
        if total_steps + cost.steps > limits.calendar_steps:
            problems.append(f"skipped {name(components[0])}: the calendar's recurrence budget "
                            f"({limits.calendar_steps:,} repetitions) is used up")
            continue
        total_steps += cost.steps
        work = cost.steps + OCCURRENCE_WEIGHT * cost.occurrences
        if batch_steps + work > limits.batch_steps and batches[-1]:
            batches.append([])
            batch_steps = 0
        batches[-1].append(components)
        batch_steps += work

    out: list[Component] = []
    for index, batch in enumerate(batches):
        if not batch:
            continue
        if clock() - began > limits.seconds:
            for components in (c for rest in batches[index:] for c in rest):
                problems.append(f"skipped {name(components[0])}: reading the calendar took longer than "
                                f"{limits.seconds:g}s")
            break
        for components, found in _expand_batch(batch, start, end, problems, name):
            if len(found) > limits.series_occurrences:  # the estimate is a bound; this is a backstop
                problems.append(f"skipped {name(components[0])}: {len(found):,} occurrences in the window "
                                f"(the limit is {limits.series_occurrences:,})")
                continue
            if len(out) + len(found) > limits.calendar_occurrences:
                problems.append(f"skipped {name(components[0])}: the calendar already has "
                                f"{limits.calendar_occurrences:,} occurrences in the window")
                continue
            out.extend(found)
    return out


def _expand_batch(
    batch: list[list[Component]], start: date, end: date, problems: list[str], name: Callable[[Component], str]
) -> list[tuple[list[Component], list[Component]]]:
    """Each series of the batch with its occurrences; a batch that fails is retried series by series."""
    import recurring_ical_events  # here, not at import: a pass of 304 answers expands nothing

    try:
        found = recurring_ical_events.of(_calendar_of(c for s in batch for c in s)).between(start, end)
    except Exception:  # noqa: BLE001 - find the culprit below
        log.debug("expanding a batch failed; expanding its series one by one", exc_info=True)
    else:
        by_uid: dict[str, list[Component]] = {}
        for occurrence in found:
            by_uid.setdefault(_text(occurrence.get("UID")), []).append(occurrence)
        return [(s, by_uid.get(_text(s[0].get("UID")), [])) for s in batch]
    out: list[tuple[list[Component], list[Component]]] = []
    for components in batch:
        try:
            out.append((components, list(recurring_ical_events.of(_calendar_of(components)).between(start, end))))
        except Exception as exc:  # noqa: BLE001 - skip this series, keep the rest
            problems.append(f"skipped {name(components[0])}: cannot expand its recurrence: {exc}")
    return out


def _calendar_of(components: Iterable[Component]) -> Component:
    import icalendar

    mini = icalendar.Calendar()
    for component in components:
        mini.add_component(component)
    return mini


# ---- estimates ------------------------------------------------------------------------------------


def _rules(component: Component) -> list[Any]:
    value = component.get("RRULE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _rule_cost(rule: Any, first: datetime, duration: timedelta, q_start: datetime,
               q_end: datetime) -> tuple[int, int]:
    """(candidates walked from DTSTART to the end of the query, occurrences inside the query)."""
    freq = str(_first(rule, "FREQ") or "").upper()
    if freq not in _PERIOD:
        raise Unexpandable(f"its RRULE has no valid FREQ ({freq or 'none'!r})")
    interval = _first(rule, "INTERVAL")
    if interval is None:
        interval = 1
    try:
        interval = int(interval)
    except (TypeError, ValueError):
        raise Unexpandable(f"its RRULE INTERVAL {interval!r} is not a number") from None
    if interval < 1:
        raise Unexpandable(f"its RRULE INTERVAL must be a positive number, not {interval}")
    count = _first(rule, "COUNT")
    try:
        count = int(count) if count is not None else None
    except (TypeError, ValueError):
        raise Unexpandable(f"its RRULE COUNT {count!r} is not a number") from None
    if count is not None and count < 0:
        count = None  # recurring_ical_events drops a negative COUNT (an old Google export bug)
    last = q_end
    until = _first(rule, "UNTIL")
    if until is not None:
        try:
            last = min(last, _utc(until))
        except (TypeError, ValueError):
            pass
    period = _PERIOD[freq] * interval
    per_period = _per_period(rule, freq)
    walked = _periods(first, last, period) * per_period
    if count is not None and not any(_first(rule, p) is not None for p in (*_DAY_PARTS, *_TIME_PARTS, "BYSETPOS")):
        walked = min(walked, count)  # no filter can hold the walk back: it ends after COUNT candidates
    inside = _periods(max(first, q_start - duration), last, period) * per_period
    if count is not None:
        inside = min(inside, count)
    return walked, min(inside, walked)


def _per_period(rule: Any, freq: str) -> int:
    """An upper bound of the candidates dateutil builds inside one period."""
    parts = _UNIT_PARTS.get(freq, _TIME_PARTS)
    per = 1
    for part in parts:
        per *= max(1, len(_all(rule, part)))
    if freq in _DAYS_IN and any(_all(rule, p) for p in _DAY_PARTS):
        per *= _DAYS_IN[freq]
    return per


def _periods(first: datetime, last: datetime, period_seconds: int) -> int:
    if last < first:
        return 0
    return math.floor((last - first).total_seconds() / period_seconds) + 1


def _first(rule: Any, part: str) -> Any:
    values = _all(rule, part)
    return values[0] if values else None


def _all(rule: Any, part: str) -> list[Any]:
    try:
        value = rule.get(part)
    except AttributeError:
        return []
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _duration(component: Component) -> timedelta:
    try:
        if component.get("DURATION") is not None:
            value = component["DURATION"].dt
            return value if isinstance(value, timedelta) and value > timedelta(0) else timedelta(0)
        if component.get("DTEND") is not None:
            return max(timedelta(0), _utc(component["DTEND"].dt) - _utc(component["DTSTART"].dt))
    except (TypeError, ValueError, AttributeError, OverflowError):
        return timedelta(0)
    return timedelta(0)


def _count_rdates(component: Component) -> int:
    value = component.get("RDATE")
    if value is None:
        return 0
    total = 0
    for item in value if isinstance(value, list) else [value]:
        total += len(getattr(item, "dts", None) or [item])
    return total


def _utc(value: Any) -> datetime:
    """A date or datetime (aware or floating) as an aware UTC datetime, for estimates only."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise TypeError(f"not a date: {value!r}")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return _text(value[0]) if value else ""
    return str(value)


def _describe(component: Component) -> str:
    uid = _text(component.get("UID")) or "(no UID)"
    summary = _text(component.get("SUMMARY"))
    return f"event {uid!r}" + (f" ({summary!r})" if summary else "")


__all__ = ["LIMITS", "Cost", "Limits", "Unexpandable", "expand", "series_cost"]
