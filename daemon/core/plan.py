"""Risks → actions: which drafts should exist right now, for whom, with which slots and why.

At most one action per (occurrence, kind), in a stable order. The planner never looks at the
conflicting event to pick a reason: the reason is the user's (``context.reasons``) or the configured
default. The caller reconciles the plan with what already exists (edited, sent, deleted drafts).
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo

from daemon.config import TIME_ZONE_REASON, Config
from daemon.core.advice import clash_advice
from daemon.core.cases import LIVE, advance, followup_due, sent
from daemon.core.classify import is_person, self_addresses
from daemon.core.copies import pick_copies
from daemon.core.detect import KIND_ORDER, SEVERITY_ORDER, reschedule_first, title_text
from daemon.core.mode import interview_mode
from daemon.core.model import (
    Action,
    ActionKind,
    Case,
    CaseFacts,
    Classification,
    DraftState,
    Event,
    Mode,
    Person,
    Phase,
    PlanContext,
    PriorDraft,
    Risk,
    RiskKind,
    Severity,
    Slot,
    Wakeup,
    ensure_aware,
)
from daemon.core.normalize import find_phones, zone, zone_name
from daemon.core.slots import SlotFinder, local_instant
from daemon.core.text import address_problem, one_line

# Risk kinds whose other event is what the user would be choosing over the interview.
CLASH_KINDS = (RiskKind.INTERVIEW_CLASH, RiskKind.DOUBLE_BOOKED, RiskKind.OUT_OF_OFFICE, RiskKind.MISSED)
# Risk kinds that, when critical and ahead of time, call for a reschedule request.
RESCHEDULE_KINDS = (
    RiskKind.INTERVIEW_CLASH,
    RiskKind.DOUBLE_BOOKED,
    RiskKind.OUT_OF_OFFICE,
    RiskKind.ODD_HOUR,
    RiskKind.TRAVEL,
)
ACTION_ORDER = {kind: i for i, kind in enumerate(ActionKind)}
SHORT_NOTICE = timedelta(hours=24)
DEFAULT_DURATION = timedelta(minutes=60)
_NO_REPLY = ("noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply", "mailer-daemon")
_NO_CONTEXT = PlanContext()
UTC = timezone.utc


@dataclass(frozen=True)
class Skipped:
    """An action the risks called for but that could not be planned, and why."""

    occurrence_key: str
    kind: ActionKind
    why: str
    warn: bool = False  # the user should hear of it (e.g. an address refused), not just a quiet skip


@dataclass
class PlanResult:
    """The plan, the actions left out (e.g. nobody to write to), the cases brought up to date, and the
    moments the plan will change by itself (the service's timers)."""

    actions: list[Action] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cases: dict[str, Case] = field(default_factory=dict)
    wakeups: list[Wakeup] = field(default_factory=list)


def plan(
    events: Sequence[Event],
    classifications: Mapping[str, Classification],
    risks: Sequence[Risk],
    config: Config,
    now: datetime,
    context: PlanContext = _NO_CONTEXT,
) -> list[Action]:
    """The drafts that should exist now: one per (occurrence, kind), ordered by interview start."""
    return plan_result(events, classifications, risks, config, now, context).actions


def plan_result(
    events: Sequence[Event],
    classifications: Mapping[str, Classification],
    risks: Sequence[Risk],
    config: Config,
    now: datetime,
    context: PlanContext = _NO_CONTEXT,
) -> PlanResult:
    """Like :func:`plan`, also saying which called-for actions were left out and why."""
    ensure_aware(now, "now")
    return _Planner(events, classifications, risks, config, now, context).run()


# ---- recipients and other per-event facts -------------------------------------------------------


def _no_reply(email: str) -> bool:
    local = email.partition("@")[0].casefold()
    return any(word in local for word in _NO_REPLY)


def recipients_for(event: Event, config: Config) -> tuple[Person, ...]:
    """The organizer; if that is the user (or missing, or a no-reply address), the other attendees.
    Never the user, rooms, resources or calendar addresses."""
    me = self_addresses(config)
    organizer = event.organizer
    if organizer is not None and is_person(organizer, me) and not _no_reply(organizer.email):
        return (organizer,)
    out: list[Person] = []
    seen: set[str] = set()
    for attendee in event.attendees:
        if is_person(attendee, me) and not _no_reply(attendee.email) and attendee.email not in seen:
            seen.add(attendee.email)
            out.append(attendee)
    return tuple(out)


def recipient_timezone(event: Event, config: Config, at: datetime) -> str | None:
    """The event's own zone (IANA) when its clocks differ from the user's, else None."""
    if not event.timezone:
        return None
    name = zone_name(event.timezone)
    own = zone(event.timezone)
    if name is None or own is None or name == config.user.timezone:
        return None
    user = config.user.zone
    # Same clocks now and half a year on (aliases like Asia/Calcutta, or Paris for a Berlin user): no need.
    for moment in (at, at + timedelta(days=182)):
        if moment.astimezone(own).utcoffset() != moment.astimezone(user).utcoffset():
            return name
    return None


def phone_for(event: Event) -> str | None:
    """The first phone number in the invitation, if any."""
    if event.phones:
        return event.phones[0]
    found = find_phones(event.location, event.description[:20_000])
    return found[0] if found else None


def _start(event: Event, tz: tzinfo) -> datetime:
    # In UTC: aware datetimes sharing a tzinfo compare and subtract by wall clock, wrong across DST.
    return event.span(tz)[0].astimezone(UTC)


def _utc(value: object) -> datetime | None:
    """An aware datetime in UTC (None for dates and None), so comparisons are by instant."""
    return value.astimezone(UTC) if isinstance(value, datetime) else None


def _duration(event: Event, config: Config, tz: tzinfo) -> timedelta:
    if config.slots.duration_minutes:
        return timedelta(minutes=config.slots.duration_minutes)
    if event.all_day:
        return DEFAULT_DURATION
    start, end = event.span(tz)
    length = end.astimezone(UTC) - start.astimezone(UTC)
    return length if length > timedelta(0) else DEFAULT_DURATION


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if abs(hours) < 1:
        return f"{max(0, round(delta.total_seconds() / 60))} min"
    if abs(hours) < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} days"


# ---- the planner --------------------------------------------------------------------------------


class _Planner:
    def __init__(
        self,
        events: Sequence[Event],
        classifications: Mapping[str, Classification],
        risks: Sequence[Risk],
        config: Config,
        now: datetime,
        context: PlanContext,
    ) -> None:
        self.config = config
        self.now = now.astimezone(UTC)  # elapsed-time arithmetic must not follow a zone's wall clock
        self.context = context
        self.tz = config.user.zone
        self.result = PlanResult()
        self.events: dict[str, Event] = pick_copies(events, self.tz)
        self.interviews = {
            k for k, e in self.events.items() if (c := classifications.get(k)) is not None and c.is_interview
        }
        self.cases = advance(context.cases, list(self.events.values()), classifications, risks, context.prior,
                             config, now, marked=context.marked_missed, detected_at=context.missed_at,
                             window=context.window)
        self.result.cases = self.cases
        # A missed interview's story goes on after it left the calendar or was cancelled: plan from the case.
        for key, case in self.cases.items():
            if case.phase in (Phase.MISSED, Phase.FOLLOWED_UP, Phase.REBOOKED) and key not in self.interviews:
                self.events[key] = case.event
                self.interviews.add(key)
        # Old interviews a rebooking replaced, and closed cases, call for nothing (nor does a clash with them).
        self.settled = {k for k, c in self.cases.items()
                        if c.phase is Phase.CLOSED or (c.phase is Phase.REBOOKED and c.rebooked_key != k)}
        self.risks: dict[str, list[Risk]] = {}
        for risk in risks:
            if risk.occurrence_key in self.interviews and risk.occurrence_key not in self.settled and not (
                risk.kind is RiskKind.INTERVIEW_CLASH and risk.other_key in self.settled
            ):
                self.risks.setdefault(risk.occurrence_key, []).append(risk)
        for found in self.risks.values():
            found.sort(key=lambda r: (KIND_ORDER[r.kind], SEVERITY_ORDER[r.severity], r.other_key or "", r.evidence))
        self.finder = SlotFinder(list(self.events.values()), config)
        self.planned: set[tuple[str, ActionKind]] = set()
        # The prior drafts indexed two ways, so that planning stays linear in calendar and history.
        self.prior: dict[str, list[PriorDraft]] = {}
        for p in sorted(context.prior, key=lambda p: (p.created.astimezone(UTC), p.occurrence_key, p.kind.value)):
            self.prior.setdefault(p.occurrence_key, []).append(p)
        # Times offered in a live or sent draft stay promised while that case stands and the time is ahead.
        self.held: dict[str, list[Slot]] = {}
        self.offering: dict[tuple[str, ActionKind], tuple[Slot, ...]] = {}  # what each live draft offers now
        for p in context.prior:
            owner = self.cases.get(p.occurrence_key)
            if not p.slots or p.state not in (*LIVE, DraftState.SENT):
                continue
            if owner is not None and owner.phase in (Phase.CLOSED, Phase.REBOOKED):
                continue
            for slot in p.slots:
                if slot.end.astimezone(UTC) > self.now and slot not in self.held.get(p.occurrence_key, ()):
                    self.held.setdefault(p.occurrence_key, []).append(slot)
            if p.state in LIVE:
                self.offering[(p.occurrence_key, p.kind)] = p.slots
        for offered in self.held.values():
            offered.sort(key=lambda s: s.start.astimezone(UTC))
            self.finder.reserve(offered)

    def _started(self, event: Event) -> bool:
        return _start(event, self.tz) <= self.now

    # -- the steps --

    def run(self) -> PlanResult:
        # Slots offered in one draft are not offered again, so the most urgent drafts choose first:
        # missed interviews, then reschedules by how soon the interview is.
        missed_now = {k for k, found in self.risks.items() if any(r.kind is RiskKind.MISSED for r in found)}
        missed_now |= {k for k, c in self.cases.items() if c.phase in (Phase.MISSED, Phase.FOLLOWED_UP)}
        for key in sorted(missed_now - self.settled, key=lambda k: (_start(self.events[k], self.tz), k)):
            if self.cases.get(key) is None or self.cases[key].phase is not Phase.REBOOKED:
                found = [r for r in self.risks.get(key, ()) if r.kind is RiskKind.MISSED]
                self._missed(self.events[key], found[0] if found else None)
        movers = self._movers()
        for key in sorted(movers, key=lambda k: (_start(self.events[k], self.tz), k)):
            self._reschedule(self.events[key], movers[key])
        for key in sorted(self.risks):
            event = self.events[key]
            join = [r for r in self.risks[key] if r.kind is RiskKind.NO_JOIN_INFO]
            if join and not self._started(event):
                self._add(event, ActionKind.JOIN_INFO, (RiskKind.NO_JOIN_INFO,),
                          [f"no_join_info ({join[0].severity.value}): {join[0].evidence}",
                           "asking the organizer for the link, dial-in or address"])
        self._thank_yous(set(movers))
        self._fit_to_rebooking()
        self.result.actions.sort(
            key=lambda a: (_start(self.events[a.occurrence_key], self.tz), a.occurrence_key, ACTION_ORDER[a.kind])
        )
        self._wakeups()
        return self.result

    def _wakeups(self) -> None:
        """When this plan changes by itself: each interview's missed check, each miss's follow-up."""
        grace = timedelta(minutes=self.config.missed.grace_minutes)
        out: list[Wakeup] = []
        for key in sorted(self.interviews - self.settled):
            event = self.events[key]
            if event.all_day or not event.user_attends:
                continue
            when = _start(event, self.tz) + grace
            if when > self.now:
                out.append(Wakeup(when, event.account, key, "missed check"))
        for key, case in sorted(self.cases.items()):
            due = followup_due(case, self.config)
            if case.phase is Phase.MISSED and due is not None and due > self.now:
                out.append(Wakeup(due, case.account, key, "follow-up"))
        self.result.wakeups = sorted(out, key=lambda w: (w.when, w.occurrence_key, w.what))

    def _case_facts(self, key: str, given: CaseFacts | None = None) -> CaseFacts:
        """What the wording needs to know about an interview's story (the case this draft belongs to)."""
        facts = given or CaseFacts()
        case = self.cases.get(key)
        if case is None:
            return facts
        if case.rebooks is not None and case.rebooks in self.cases:  # a new invitation: tell the old story
            old = self._case_facts(case.rebooks, facts)
            return replace(old, rebooked=self._slot_of(case.event, _start(case.event, self.tz)))
        drafts = self.prior.get(key, [])
        start = _start(self.events[key], self.tz) if key in self.events else None
        original = case.booked_start.astimezone(UTC) if case.booked_start is not None else None
        return replace(
            facts,
            follows_miss=case.missed_at is not None or facts.follows_miss,
            apology_sent=bool(sent(drafts, ActionKind.MISSED, ActionKind.FOLLOW_UP)),
            prior_contact=bool(sent(drafts)),
            previous_requests=len(sent(drafts, ActionKind.RESCHEDULE)),
            original=self._slot_of(case.event, original) if original is not None and original != start else None,
            rebooked=self._slot_of(case.event, case.rebooked_start) if case.rebooked_start is not None else None,
            agreed=True if case.rebooked_start is not None else facts.agreed,
        )

    def _slot_of(self, event: Event, start: datetime) -> Slot:
        """The interview's own length at ``start``."""
        start = start.astimezone(UTC)
        if event.all_day:
            return Slot(start, start + DEFAULT_DURATION)
        begin, end = event.span(self.tz)
        length = end.astimezone(UTC) - begin.astimezone(UTC)
        return Slot(start, start + (length if length > timedelta(0) else DEFAULT_DURATION))

    def _movers(self) -> dict[str, list[str]]:
        """Interviews to reschedule, each with the lines explaining why."""
        movers: dict[str, list[str]] = {}
        clashes: list[tuple[datetime, str, str, Risk]] = []
        for key in sorted(self.risks):
            event = self.events[key]
            if self._started(event):
                continue
            for risk in self.risks[key]:
                if risk.kind not in RESCHEDULE_KINDS or risk.severity is not Severity.CRITICAL:
                    continue
                if risk.kind is RiskKind.INTERVIEW_CLASH:
                    if risk.other_key and risk.other_key in self.events:
                        a, b = sorted((key, risk.other_key))
                        clashes.append((_start(event, self.tz), a, b, risk))
                    continue
                movers.setdefault(key, []).append(f"{risk.kind.value} ({risk.severity.value}): {risk.evidence}")
        # Two interviews clash: move exactly one of them, unless one is already being moved anyway.
        done: set[tuple[str, str]] = set()
        for _, a, b, _risk in sorted(clashes, key=lambda c: (c[0], c[1], c[2])):
            if (a, b) in done:
                continue
            done.add((a, b))
            ea, eb = self.events[a], self.events[b]
            if a in movers or b in movers:
                moving = a if a in movers else b
                movers[moving].append(f"moving it also resolves its clash with another interview ({self._title(a, b, moving)})")
                continue
            open_ = [e for e in (ea, eb) if not self._started(e) and e.occurrence_key in self.interviews]
            if not open_:
                continue
            mover = open_[0] if len(open_) == 1 else reschedule_first(ea, eb, self.tz)
            other = eb if mover is ea else ea
            why = self._why_this_one(mover, other, len(open_) == 1)
            movers.setdefault(mover.occurrence_key, []).append(
                f"interview_clash (critical): overlaps another interview, {title_text(other)}"
            )
            movers[mover.occurrence_key].append(why)
        return movers

    def _title(self, a: str, b: str, moving: str) -> str:
        other = b if moving == a else a
        return title_text(self.events[other])

    def _why_this_one(self, mover: Event, other: Event, only: bool) -> str:
        if only:
            return "the other one has already started, so this is the one to move"
        if mover.created is not None and other.created is not None and _utc(mover.created) != _utc(other.created):
            return "this one was booked later, so it is the one to move; the other is left alone"
        if _start(mover, self.tz) != _start(other, self.tz):
            return "this one starts later, so it is the one to move; the other is left alone"
        return "both were booked and start together; this one is moved (a stable choice); the other is left alone"

    def _slots(self, event: Event, kind: ActionKind) -> tuple[Slot, ...]:
        """Free slots for one draft; they are then held back from every later draft of this plan.

        A live draft keeps offering its times until they pass (a standing offer does not change under
        the reader's eyes); a new draft of the case offers the case's standing times again first, if
        they still give the notice `slots.min_notice_hours` asks; new times only top them up.
        """
        wanted = self.config.slots.count
        key = event.occurrence_key
        earliest = self.now + timedelta(hours=self.config.slots.min_notice_hours)
        mine = self.offering.get((key, kind), ())
        own = [s for s in mine if s.start.astimezone(UTC) > self.now]
        own += [s for s in self.held.get(key, ()) if s not in own and s.start.astimezone(UTC) >= earliest]
        own = own[:wanted]
        if len(own) >= wanted:
            return tuple(own)
        theirs = recipient_timezone(event, self.config, _start(event, self.tz))
        horizon = self.config.slots.horizon_days
        slots: tuple[Slot, ...] = ()
        # A busy fortnight (or one whose free time went to other drafts): look one horizon further.
        for days in (horizon, 2 * horizon):
            slots = tuple(
                self.finder.find(
                    self.now,
                    _duration(event, self.config, self.tz),
                    count=wanted - len(own),
                    ignore={event.occurrence_key},
                    their_zone=zone(theirs) if theirs else None,
                    horizon_days=days,
                    travel=interview_mode(event) is Mode.ONSITE,
                )
            )
            if len(slots) >= wanted - len(own):
                break
        self.finder.reserve(slots)
        return (*own, *slots)

    def _slot_line(self, event: Event, slots: tuple[Slot, ...]) -> str:
        if not slots:
            return "no free slot found in your working hours; the draft asks them to suggest a time"
        theirs = recipient_timezone(event, self.config, _start(event, self.tz))
        where = f", preferring hours that suit {theirs} too" if theirs else ""
        return f"{len(slots)} alternative slot(s) proposed in your working hours{where}"

    def _reschedule(self, event: Event, why: list[str]) -> None:
        risks = self.risks.get(event.occurrence_key, [])
        kinds = tuple(
            sorted(
                {r.kind for r in risks if r.kind in RESCHEDULE_KINDS and r.severity is Severity.CRITICAL},
                key=lambda k: KIND_ORDER[k],
            )
        )
        probable = self._probable(event) if self._time_zone_case(event, kinds) else None
        slots = self._slots(event, ActionKind.RESCHEDULE)
        left = _start(event, self.tz) - self.now
        lines = [*why, f"asking {_hours(left)} ahead: the more notice, the better", self._slot_line(event, slots)]
        if probable is not None:
            lines.append("the draft first asks whether they meant the same clock time in your zone")
        # Seeds: "Contact the employer or recruiter by telephone ASAP" — for any cancellation, so a
        # number in the invitation means a call first, whatever the notice.
        phone = phone_for(event)
        if phone:
            note = f"Call {self._who(event)} first: {phone}, then send the draft."
        elif left < SHORT_NOTICE:
            note = f"Short notice: call {self._who(event)} first if you have their number, then send the draft."
        else:
            self._add(event, ActionKind.RESCHEDULE, kinds, lines, slots=slots, probable=probable)
            return
        self._add(event, ActionKind.RESCHEDULE, kinds, lines, slots=slots, call_first=True, phone=phone, notes=(note,),
                  probable=probable)

    def _time_zone_case(self, event: Event, kinds: tuple[RiskKind, ...]) -> bool:
        """The planner will give this reschedule the time-zone reason (see :meth:`_add`)."""
        return (event.occurrence_key not in self.context.reasons and kinds == (RiskKind.ODD_HOUR,)
                and self._set_up_elsewhere(event) is not None)

    def _probable(self, event: Event) -> Slot | None:
        """The time they probably meant: the invitation's clock time, read in the user's zone, if it is free."""
        own = zone(event.timezone) if event.timezone else None
        if own is None or not isinstance(event.start, datetime) or not isinstance(event.end, datetime):
            return None
        local = event.start.astimezone(own)
        start = local_instant(local.date(), local.time().replace(tzinfo=None), self.tz)
        if start is None:
            return None
        end = start + (event.end.astimezone(UTC) - event.start.astimezone(UTC))
        waking = self.config.detection.waking_hours
        if not (waking.start <= start.time() and end.astimezone(self.tz).time() <= waking.end):
            return None
        if start.astimezone(UTC) < self.now + timedelta(hours=self.config.slots.min_notice_hours):
            return None
        slot = Slot(start, end.astimezone(self.tz))
        if not self.finder.is_free(slot, ignore={event.occurrence_key}):
            return None
        self.finder.reserve((slot,))
        return slot

    def _who(self, event: Event) -> str:
        people = recipients_for(event, self.config)
        if event.organizer is not None and people and people[0] is event.organizer:
            return event.organizer.display
        return people[0].display if people else "the organizer"

    def _missed(self, event: Event, risk: Risk | None) -> None:
        key = event.occurrence_key
        case = self.cases.get(key)
        wait = timedelta(hours=self.config.missed.followup_after_hours)
        drafts = self.prior.get(key, [])
        made = [p for p in drafts if p.kind is ActionKind.MISSED]
        since = case.missed_at.astimezone(UTC) if case is not None and case.missed_at is not None else self.now
        # The first contact after a miss is always the missed-interview apology, however late it is
        # noticed (a laptop that slept through it, a miss recorded days later); the follow-up comes
        # `followup_after_hours` after the miss was noticed, and only after that first draft.
        follow = bool(made) and self.now >= since + wait
        timing = f"the miss was noticed {_hours(self.now - since)} ago"
        if risk is not None:
            evidence = f"missed ({risk.severity.value}): {risk.evidence.removeprefix('missed: ')}"
        else:
            evidence = "missed: recorded in this interview's case"
        if follow:
            deleted = any(p.kind is ActionKind.FOLLOW_UP and p.state is DraftState.DELETED for p in drafts)
            if deleted:
                self.result.skipped.append(Skipped(key, ActionKind.FOLLOW_UP, "you deleted the follow-up draft"))
                return
            slots = self._slots(event, ActionKind.FOLLOW_UP)
            lines = [
                evidence,
                f"{timing}: time for the follow-up apology, whether or not you have spoken since",
                self._slot_line(event, slots),
            ]
            self._add(event, ActionKind.FOLLOW_UP, (RiskKind.MISSED,), lines, slots=slots,
                      case=CaseFacts(follows_miss=True), advise=True)
            return
        phone = phone_for(event)
        who = self._who(event)
        note = f"Call {who} first: {phone}" if phone else (
            f"Call {who} first if you have their number (none was found in the invitation)"
        )
        slots = self._slots(event, ActionKind.MISSED)
        lines = [evidence, f"{timing}: contact them now, a phone call first, then this email", self._slot_line(event, slots)]
        self._add(event, ActionKind.MISSED, (RiskKind.MISSED,), lines, slots=slots, call_first=True, phone=phone,
                  notes=(note,), case=CaseFacts(follows_miss=True), advise=True)

    def _thank_yous(self, movers: set[str]) -> None:
        """A thank-you confirming the new time of each rebooked case (and any thank-you already drafted)."""
        targets: dict[str, str] = {}
        for key, case in sorted(self.cases.items()):
            if case.phase is Phase.REBOOKED and case.rebooked_key:
                targets.setdefault(case.rebooked_key, key)
        for key in sorted(self.prior):
            if any(p.kind is ActionKind.THANK_YOU and p.state in LIVE for p in self.prior[key]):
                targets.setdefault(key, key)
        for key, old in sorted(targets.items()):
            event = self.events.get(key)
            if event is None or key not in self.interviews or key in movers or key in self.settled:
                continue
            if not event.user_attends or _start(event, self.tz) <= self.now:
                continue
            linked = self.cases.get(old)
            if linked is None or linked.rebooked_key != key:
                why = "a thank-you for this new time was already drafted"
            elif old == key:
                why = f"the interview moved after your {self._trouble(linked)}"
            else:
                why = f"a new invitation from the same organizer or company came after your {self._trouble(linked)}"
            self._add(event, ActionKind.THANK_YOU, (), [why, "thanking them for their flexibility"])

    def _trouble(self, case: Case) -> str:
        return "missed interview" if case.missed_at is not None else "reschedule request"

    def _fit_to_rebooking(self) -> None:
        """An untouched follow-up of a rebooked case is updated to the new time (no slots); kept, not withdrawn."""
        for key, case in sorted(self.cases.items()):
            if case.phase is not Phase.REBOOKED or key not in self.events:
                continue
            live = [p for p in self.prior.get(key, ()) if p.kind is ActionKind.FOLLOW_UP and p.state in LIVE]
            if live:
                self._add(self.events[key], ActionKind.FOLLOW_UP, (RiskKind.MISSED,),
                          ["the interview was rebooked: the follow-up now confirms the new time, with no slots"])

    def _set_up_elsewhere(self, event: Event) -> str | None:
        """The event's own zone when its clock there differs from the user's at its start."""
        if not event.timezone or not isinstance(event.start, datetime):
            return None
        theirs = zone(event.timezone)
        if theirs is None:
            return None
        start = event.start.astimezone(UTC)
        if start.astimezone(theirs).utcoffset() == start.astimezone(self.tz).utcoffset():
            return None
        return zone_name(event.timezone)

    # -- building actions --

    def _add(
        self,
        event: Event,
        kind: ActionKind,
        risks: tuple[RiskKind, ...],
        explanation: list[str],
        *,
        slots: tuple[Slot, ...] = (),
        call_first: bool = False,
        phone: str | None = None,
        notes: tuple[str, ...] = (),
        probable: Slot | None = None,
        case: CaseFacts | None = None,
        advise: bool | None = None,
    ) -> None:
        key = event.occurrence_key
        if (key, kind) in self.planned:
            return
        done = [
            p.state
            for p in self.prior.get(key, ())
            if p.kind is kind and p.state in (DraftState.DELETED, DraftState.SENT)
        ]
        if done:
            why = "you deleted this draft; it is not made again" if DraftState.DELETED in done else "already sent"
            self.result.skipped.append(Skipped(key, kind, why))
            return
        people = recipients_for(event, self.config)
        if not people:
            self.result.skipped.append(
                Skipped(key, kind, "nobody to write to: no organizer or other attendee with an address")
            )
            return
        refused = [(p, problem) for p in people if (problem := address_problem(p.email))]
        if refused:
            who, problem = refused[0]
            self.result.skipped.append(
                Skipped(key, kind, f"no draft: the address {one_line(who.email, 80)!r} was refused: {problem}",
                        warn=True)
            )
            return
        reason = self.context.reasons.get(key) or self.config.drafts.reason
        source = "the one you gave" if key in self.context.reasons else "the default from drafts.reason"
        if key not in self.context.reasons and kind is ActionKind.RESCHEDULE and risks == (RiskKind.ODD_HOUR,):
            elsewhere = self._set_up_elsewhere(event)
            if elsewhere:
                reason, source = TIME_ZONE_REASON, f"the invitation was set up in {elsewhere}"
        lines = [*explanation, f"to {', '.join(p.email for p in people)}; reason: {reason} ({source})"]
        if advise if advise is not None else kind is ActionKind.RESCHEDULE:
            advice = self._advice(key, reason, key in self.context.reasons)
            if advice:
                notes = (*notes, advice)
        self.planned.add((key, kind))
        self.result.actions.append(
            Action(
                kind=kind,
                account=event.account,
                occurrence_key=key,
                recipients=people,
                risks=risks,
                slots=slots,
                recipient_timezone=recipient_timezone(event, self.config, _start(event, self.tz)),
                reason=reason,
                call_first=call_first,
                phone=phone,
                notes=notes,
                explanation=tuple(lines),
                mode=interview_mode(event),
                probable=probable if reason == TIME_ZONE_REASON else None,
                hours_overlap=self._hours_overlap(event),
                case=self._case_facts(key, case),
                mailbox=self.config.mailbox(event.account),
            )
        )

    def _advice(self, key: str, reason: str, given: bool) -> str | None:
        """The articles' "consider your reason", for the user: what the clash is with, and what follows."""
        for risk in self.risks.get(key, ()):
            if risk.kind in CLASH_KINDS and risk.other_key:
                other = self.events.get(risk.other_key)
                if other is not None:
                    return clash_advice(other, risk.other_is_interview, reason, given)
        return clash_advice(None, False, reason, given)

    def _hours_overlap(self, event: Event) -> bool:
        theirs = recipient_timezone(event, self.config, _start(event, self.tz))
        return theirs is None or self.finder.hours_overlap(zone(theirs), self.now)
