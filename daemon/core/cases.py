"""Cases: one story per interview, carried from pass to pass and beyond the calendar's read window.

:func:`advance` takes the cases as stored, the events in view, the risks found now and the drafts made
so far, and returns every case brought up to date: the interview as last seen, when it was missed,
whether it was rebooked (moved, or re-invited by the same organizer or company), whether it is
closed and why, and its phase. A case closes on evidence only, never because its interview scrolled
out of view. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from daemon.config import Config
from daemon.core.classify import CONSUMER_DOMAINS, HIRING_DOMAINS, self_addresses
from daemon.core.model import (
    ActionKind,
    Case,
    Classification,
    DraftState,
    Event,
    Phase,
    PriorDraft,
    Risk,
    RiskKind,
    Severity,
)

UTC = timezone.utc
# Risk kinds that make an upcoming interview "at risk" (the ones a reschedule request answers).
AT_RISK_KINDS = frozenset(
    {RiskKind.INTERVIEW_CLASH, RiskKind.DOUBLE_BOOKED, RiskKind.OUT_OF_OFFICE, RiskKind.ODD_HOUR, RiskKind.TRAVEL}
)
STANDING = (DraftState.UNTOUCHED, DraftState.EDITED, DraftState.SENT)  # a draft that was or may be sent
LIVE = (DraftState.PENDING, DraftState.UNTOUCHED, DraftState.EDITED)
TROUBLE = (Phase.RESCHEDULE_REQUESTED, Phase.MISSED, Phase.FOLLOWED_UP)


def start_of(event: Event, config: Config) -> datetime:
    """The event's start as a UTC instant (all-day: midnight in the user's zone)."""
    return event.span(config.user.zone)[0].astimezone(UTC)


def end_of(event: Event, config: Config) -> datetime:
    return event.span(config.user.zone)[1].astimezone(UTC)


def followup_due(case: Case, config: Config) -> datetime | None:
    """When the follow-up apology of a missed interview falls due: wall time from the miss."""
    if case.missed_at is None:
        return None
    return case.missed_at.astimezone(UTC) + timedelta(hours=config.missed.followup_after_hours)


def drafts_of(prior: Iterable[PriorDraft]) -> dict[str, list[PriorDraft]]:
    """Prior drafts by occurrence key, oldest first."""
    out: dict[str, list[PriorDraft]] = {}
    for p in sorted(prior, key=lambda p: (p.created.astimezone(UTC), p.kind.value)):
        out.setdefault(p.occurrence_key, []).append(p)
    return out


def sent(drafts: Iterable[PriorDraft], *kinds: ActionKind) -> list[PriorDraft]:
    return [d for d in drafts if d.state is DraftState.SENT and (not kinds or d.kind in kinds)]


def advance(
    stored: Iterable[Case],
    events: Sequence[Event],
    classifications: Mapping[str, Classification],
    risks: Sequence[Risk],
    prior: Sequence[PriorDraft],
    config: Config,
    now: datetime,
    *,
    marked: Collection[str] = (),
    marked_at: Mapping[str, datetime] | None = None,
    detected_at: Mapping[str, datetime] | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> dict[str, Case]:
    """Every case brought up to date with what is seen ``now``; new interviews open new cases."""
    return _Tracker(config, now, events, classifications, risks, prior, marked, marked_at or {},
                    detected_at or {}, window).run({c.key: c for c in stored})


class _Tracker:
    def __init__(
        self,
        config: Config,
        now: datetime,
        events: Sequence[Event],
        classifications: Mapping[str, Classification],
        risks: Sequence[Risk],
        prior: Sequence[PriorDraft],
        marked: Collection[str],
        marked_at: Mapping[str, datetime],
        detected_at: Mapping[str, datetime],
        window: tuple[datetime, datetime] | None,
    ) -> None:
        self.config = config
        self.now = now.astimezone(UTC)
        self.events: dict[str, Event] = {}
        for event in events:
            self.events.setdefault(event.occurrence_key, event)
        self.interviews = {k for k, e in self.events.items()
                           if (c := classifications.get(k)) is not None and c.is_interview}
        self.missed = {r.occurrence_key for r in risks if r.kind is RiskKind.MISSED} | set(marked)
        self.at_risk = {r.occurrence_key for r in risks
                        if r.kind in AT_RISK_KINDS and r.severity is Severity.CRITICAL}
        self.drafts = drafts_of(prior)
        self.marked = set(marked)
        self.marked_at = marked_at
        self.detected_at = detected_at
        self.window = window
        self.me = self_addresses(config)

    def run(self, cases: dict[str, Case]) -> dict[str, Case]:
        for key in sorted(self.events):
            event, case = self.events[key], cases.get(key)
            if key in self.interviews:
                case = case or Case(key=key, account=event.account, event=event, opened=self.now, seen=self.now)
                cases[key] = replace(case, event=event, account=event.account, seen=self.now)
            elif case is None and key in self.drafts:  # drafts from before the case store, or no longer an interview
                cases[key] = Case(key=key, account=event.account, event=event, opened=self.now, seen=self.now)
        for key, case in list(cases.items()):
            if case.phase is not Phase.CLOSED:
                cases[key] = self._facts(case)
        self._link_reinvitations(cases)
        for key, case in list(cases.items()):
            if case.phase is not Phase.CLOSED:
                case = self._close(case, cases)
                cases[key] = replace(case, phase=self._phase(case))
        return cases

    # -- facts --

    def _gone(self, case: Case) -> bool:
        """Removed, cancelled or declined while its time is in view (scrolling out of view is not 'gone')."""
        event = self.events.get(case.key)
        if event is not None:
            return not event.user_attends
        if self.window is None:
            return False
        start, end = start_of(case.event, self.config), end_of(case.event, self.config)
        return end > self.window[0] and start < self.window[1]

    def _facts(self, case: Case) -> Case:
        key = case.key
        drafts = self.drafts.get(key, [])
        start = start_of(case.event, self.config)
        case = replace(case, gone=self._gone(case))
        if key in self.marked:
            case = replace(case, user_missed=True)
        apologies = [d for d in drafts if d.kind is ActionKind.MISSED and d.state in STANDING]
        if case.rebooked_key is None and case.missed_at is None and (key in self.missed or apologies):
            # a missed-interview draft is evidence of the miss too (drafts from before this case existed)
            first = [d.created.astimezone(UTC) for d in drafts if d.kind is ActionKind.MISSED]
            seen = [t.astimezone(UTC) for t in (self.marked_at.get(key), self.detected_at.get(key)) if t]
            booked = _utc(apologies[0].event_start) if apologies else None
            case = replace(case, missed_at=min([*first, *seen, self.now]),
                           booked_start=case.booked_start or booked or start)
        requests = [d for d in drafts if d.kind is ActionKind.RESCHEDULE]
        standing = [d for d in requests if d.state in STANDING]
        if standing and case.requested_at is None:
            case = replace(case, requested_at=standing[0].created.astimezone(UTC),
                           booked_start=case.booked_start or _utc(standing[0].event_start) or start)
        elif case.requested_at is not None and requests and not standing and not case.gone:
            # the request was withdrawn or deleted while the interview is still there: no request stands
            case = replace(case, requested_at=None, booked_start=None if case.missed_at is None else case.booked_start)
        if case.rebooked_key is None and key in self.events and (case.missed_at or case.requested_at):
            moved = self._moved(case, start)
            if moved:
                case = replace(case, rebooked_key=key, rebooked_start=start)
            elif case.requested_at is not None and case.missed_at is None and key in self.at_risk:
                case = replace(case, booked_start=start)  # moved into new trouble: the request goes on
        return case

    def _moved(self, case: Case, start: datetime) -> bool:
        """The organizer moved this interview to a new, untroubled time after the miss or the request."""
        event = self.events[case.key]
        if case.booked_start is None or start == case.booked_start.astimezone(UTC) or not event.user_attends:
            return False
        return start > self.now and case.key not in self.at_risk

    # -- rebooking by a new invitation --

    def _company(self, event: Event) -> tuple[str, str]:
        """(organizer address, company domain or '') of an interview; generic domains are no company."""
        organizer = event.organizer
        if organizer is None or not organizer.email or organizer.email in self.me:
            return "", ""
        domain = organizer.domain
        generic = domain in CONSUMER_DOMAINS or any(domain == d or domain.endswith("." + d) for d in HIRING_DOMAINS)
        own = {a.rpartition("@")[2] for a in self.me}
        return organizer.email.casefold(), "" if generic or domain in own else domain

    def _link_reinvitations(self, cases: dict[str, Case]) -> None:
        """A new interview from the same organizer or company after a miss or a request rebooks that case."""
        horizon = timedelta(days=self.config.slots.horizon_days)
        linked = {c.rebooks for c in cases.values() if c.rebooks} | {
            c.rebooked_key for c in cases.values() if c.rebooked_key}
        waiting = sorted(
            (c for c in cases.values()
             if c.phase is not Phase.CLOSED and c.rebooked_key is None and (c.missed_at or c.requested_at)),
            key=lambda c: (self._trigger(c), c.key), reverse=True,
        )
        if not waiting:
            return
        fresh = sorted(
            (c for c in cases.values()
             if c.key in self.interviews and c.key not in linked and c.rebooks is None and c.missed_at is None
             and c.requested_at is None and self.events[c.key].user_attends
             and start_of(c.event, self.config) > self.now),
            key=lambda c: (start_of(c.event, self.config), c.key),
        )
        for new in fresh:
            email, domain = self._company(new.event)
            appeared = _utc(new.event.created) or new.opened.astimezone(UTC)
            for old in waiting:
                if old.rebooked_key is not None or old.key == new.key:
                    continue
                old_email, old_domain = self._company(old.event)
                if not email or not (email == old_email or (domain and domain == old_domain)):
                    continue
                trigger = self._trigger(old)
                if not (trigger <= appeared <= trigger + horizon):
                    continue
                if new.event.created is None and new.opened <= old.opened:
                    continue  # both first seen together (a new state file): no sign it came afterwards
                if start_of(new.event, self.config) <= (old.booked_start or trigger):
                    continue
                if old.missed_at is None and not old.gone:
                    continue  # a request, but the old interview still stands: perhaps another round
                start = start_of(new.event, self.config)
                cases[old.key] = replace(old, rebooked_key=new.key, rebooked_start=start)
                cases[new.key] = replace(new, rebooks=old.key)
                waiting = [cases[old.key] if w.key == old.key else w for w in waiting]
                break

    def _trigger(self, case: Case) -> datetime:
        """From when a new invitation counts as the answer: the missed start, else the request."""
        times = [t.astimezone(UTC) for t in (case.requested_at,) if t]
        if case.missed_at is not None:
            times.append(min(case.missed_at.astimezone(UTC), (case.booked_start or case.missed_at).astimezone(UTC)))
        return min(times)

    # -- closing --

    def _close(self, case: Case, cases: Mapping[str, Case]) -> Case:
        why = self._close_reason(case, cases)
        return replace(case, closed_at=self.now, close_reason=why) if why else case

    def _close_reason(self, case: Case, cases: Mapping[str, Case]) -> str:
        if case.closed_at is not None:
            return case.close_reason or "closed"
        config, now = self.config, self.now
        drafts = self.drafts.get(case.key, [])
        grace = timedelta(minutes=config.missed.grace_minutes)
        if case.rebooked_start is not None and now >= case.rebooked_start.astimezone(UTC) + grace:
            return "the rebooked interview took place"
        started = now >= start_of(case.event, config)
        made = [d for d in drafts if d.state not in (DraftState.PENDING, DraftState.WITHDRAWN)]
        if started and made and made[-1].state is DraftState.DELETED and not any(d.state in LIVE for d in drafts):
            return "you deleted the last draft"
        follow = sent(drafts, ActionKind.FOLLOW_UP)
        if follow and case.rebooked_key is None:
            when = max((d.updated or d.created).astimezone(UTC) for d in follow)
            if now >= when + timedelta(days=config.missed.close_after_days):
                return f"the follow-up apology was sent {config.missed.close_after_days} days ago"
        lookback = timedelta(days=config.missed.lookback_days)
        if case.missed_at is None and case.rebooked_key is None:
            if case.gone and (case.requested_at is None
                              or now >= case.requested_at.astimezone(UTC) + timedelta(days=config.slots.horizon_days)):
                return "the interview was cancelled or removed" + (
                    "; no new time came" if case.requested_at is not None else "")
            if now >= end_of(case.event, config) + lookback:
                return "the interview took place"
        elif case.missed_at is not None and case.rebooked_key is None and not drafts and (
            now >= case.missed_at.astimezone(UTC) + lookback
        ):
            return "missed, with nobody to write to"
        return ""

    def _phase(self, case: Case) -> Phase:
        if case.closed_at is not None:
            return Phase.CLOSED
        if case.rebooked_key is not None:
            return Phase.REBOOKED
        if case.missed_at is not None:
            return Phase.FOLLOWED_UP if sent(self.drafts.get(case.key, []), ActionKind.FOLLOW_UP) else Phase.MISSED
        if case.requested_at is not None:
            return Phase.RESCHEDULE_REQUESTED
        if case.key in self.at_risk:
            return Phase.AT_RISK
        return Phase.SCHEDULED


def _utc(value: object) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None
