"""The one immutable event model every provider normalises into, plus the core's value types.

Rules the whole code base relies on:
- every ``datetime`` is timezone-aware (``tzinfo`` set); providers fix naive values at their boundary;
- an all-day event has ``date`` (not ``datetime``) start and end, end exclusive, and is turned into
  an interval only in the user's timezone (:meth:`Event.span`);
- an event *occurrence* is identified by :attr:`Event.occurrence_key`, stable across polls and moves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone, tzinfo
from enum import Enum, StrEnum
from functools import lru_cache


class Response(str, Enum):
    """The user's (or an attendee's) answer to an invitation."""

    NEEDS_ACTION = "needs_action"
    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"
    ORGANIZER = "organizer"  # the user organised it


class ShowAs(str, Enum):
    """How an event blocks time (Google transparency / Graph showAs / iCal TRANSP)."""

    BUSY = "busy"
    FREE = "free"
    TENTATIVE = "tentative"
    OUT_OF_OFFICE = "oof"
    WORKING_ELSEWHERE = "working_elsewhere"


class EventType(str, Enum):
    """Special kinds of calendar entries."""

    DEFAULT = "default"
    OUT_OF_OFFICE = "out_of_office"
    FOCUS_TIME = "focus_time"
    WORKING_LOCATION = "working_location"
    BIRTHDAY = "birthday"


@dataclass(frozen=True, slots=True)
class Person:
    """An organizer or attendee. ``email`` is lower-cased by :func:`person`."""

    email: str
    name: str = ""
    response: Response = Response.NEEDS_ACTION
    is_self: bool = False
    is_resource: bool = False  # rooms, equipment
    optional: bool = False

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()

    @property
    def display(self) -> str:
        return self.name or self.email


def person(
    email: str,
    name: str | None = None,
    response: Response = Response.NEEDS_ACTION,
    *,
    is_self: bool = False,
    is_resource: bool = False,
    optional: bool = False,
) -> Person:
    """Build a :class:`Person`, normalising the address (strip ``mailto:``, lower-case)."""
    addr = email.strip()
    if addr.lower().startswith("mailto:"):
        addr = addr[7:]
    return Person(
        email=addr.strip().lower(),
        name=(name or "").strip(),
        response=response,
        is_self=is_self,
        is_resource=is_resource,
        optional=optional,
    )


@dataclass(frozen=True, slots=True)
class StatedTime:
    """A start time written in an invitation email with its zone, e.g. "Tue, Mar 18 · 2pm ET".

    ``zone`` is an IANA name (or ``UTC``); the date parts are None when the text gave none (``year``
    alone may be missing from "March 18").
    """

    text: str
    hour: int
    minute: int
    zone: str
    year: int | None = None
    month: int | None = None
    day: int | None = None


@dataclass(frozen=True, slots=True)
class InvitationFacts:
    """What the invitation email says about an event, attached by the engine before detection."""

    subject: str = ""
    phones: tuple[str, ...] = ()
    join_urls: tuple[str, ...] = ()
    times: tuple[StatedTime, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """One event occurrence, normalised. Immutable; build a new one to change it.

    ``start``/``end`` are aware datetimes for timed events and ``date`` values for all-day events.
    ``timezone`` is the event's own IANA zone when the source says so (e.g. the zone it was created in).
    """

    account: str
    source_id: str  # the provider's id for this occurrence (Google event id, Graph id, ics UID+RID)
    title: str
    start: datetime | date
    end: datetime | date
    calendar_id: str = ""
    timezone: str | None = None
    description: str = ""
    location: str = ""
    organizer: Person | None = None
    attendees: tuple[Person, ...] = ()
    self_response: Response = Response.ACCEPTED
    show_as: ShowAs = ShowAs.BUSY
    cancelled: bool = False
    event_type: EventType = EventType.DEFAULT
    join_urls: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    ical_uid: str | None = None
    series_id: str | None = None  # recurring master id, if this is an occurrence
    recurrence_id: datetime | date | None = None  # original start of the occurrence in its series
    created: datetime | None = None
    updated: datetime | None = None
    categories: tuple[str, ...] = ()
    is_private: bool = False
    web_link: str | None = None
    # Provider-specific hints for threading a reply (e.g. the invitation's Message-ID / thread id).
    thread_hints: tuple[tuple[str, str], ...] = ()
    # What the invitation email says (phones, links, the time it states), when it was read.
    invitation: InvitationFacts | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end", "recurrence_id", "created", "updated"):
            value = getattr(self, name)
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise ValueError(f"Event.{name} must be timezone-aware, got naive {value!r}")
        if isinstance(self.start, datetime) != isinstance(self.end, datetime):
            raise ValueError("Event start and end must both be datetimes or both be dates")

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)

    @property
    def series_key(self) -> str:
        """Identity of the series (or single event) independent of the occurrence."""
        return self.ical_uid or self.series_id or self.source_id

    @property
    def occurrence_key(self) -> str:
        """Stable identity of this occurrence: survives moves of the occurrence and re-polls."""
        if self.recurrence_id is None:
            return self.series_key
        return f"{self.series_key}@{_instant_text(self.recurrence_id)}"

    def span(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """Start and end as aware datetimes; all-day dates become midnights in ``tz``."""
        return as_instant(self.start, tz), as_instant(self.end, tz)

    @property
    def user_attends(self) -> bool:
        return self.self_response is not Response.DECLINED and not self.cancelled

    @property
    def blocks_time(self) -> bool:
        """True when this event makes the user busy (not free, not declined, not cancelled)."""
        return self.user_attends and self.show_as not in (ShowAs.FREE, ShowAs.WORKING_ELSEWHERE) and (
            self.event_type not in (EventType.WORKING_LOCATION, EventType.BIRTHDAY)
        )

    def hint(self, name: str) -> str | None:
        for key, value in self.thread_hints:
            if key == name:
                return value
        return None


def as_instant(value: datetime | date, tz: tzinfo) -> datetime:
    """An aware datetime for a datetime or (all-day) date, dates read as midnight in ``tz``."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}")
        return value
    return datetime.combine(value, time(0), tzinfo=tz)


@lru_cache(maxsize=8192)  # occurrence keys are asked for often, and built from few distinct instants
def _instant_text(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def ensure_aware(value: datetime, what: str = "datetime") -> datetime:
    """Reject naive datetimes at a boundary with a clear message."""
    if value.utcoffset() is None:
        raise ValueError(f"{what} must include a timezone offset, got {value.isoformat()}")
    return value


# ---- the core's outputs -------------------------------------------------------------------------


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class RiskKind(str, Enum):
    INTERVIEW_CLASH = "interview_clash"
    DOUBLE_BOOKED = "double_booked"
    OUT_OF_OFFICE = "out_of_office"
    TIGHT_BUFFER = "tight_buffer"
    TRAVEL = "travel"
    ODD_HOUR = "odd_hour"
    NO_JOIN_INFO = "no_join_info"
    MISSED = "missed"
    TIME_MISMATCH = "time_mismatch"  # the invitation email states another time than the event's


class ActionKind(str, Enum):
    RESCHEDULE = "reschedule_request"
    MISSED = "missed_interview"
    FOLLOW_UP = "follow_up_apology"
    THANK_YOU = "thank_you"
    JOIN_INFO = "ask_join_info"


@dataclass(frozen=True, slots=True)
class Classification:
    """Whether an event is an interview, with the score and the reasons that produced it."""

    occurrence_key: str
    is_interview: bool
    score: float
    reasons: tuple[str, ...]


class RiskCause(StrEnum):
    """Why a risk arose: the root causes `salvage report` explains and gives a tip for."""

    NONE = ""
    TIMEZONE = "timezone"
    INTERVIEW_CLASH = "interview_clash"
    DOUBLE_BOOKING = "double_booking"
    OUT_OF_OFFICE = "out_of_office"
    TRAVEL = "travel"
    BUFFER = "buffer"
    ODD_HOUR = "odd_hour"
    NO_JOIN_INFO = "no_join_info"
    USER_DECLARED = "user_declared"
    NO_REMINDER = "no_reminder"  # a miss nothing else explains


@dataclass(frozen=True, slots=True)
class Risk:
    """A problem with one interview. ``other_key`` names the conflicting event, if any.

    ``evidence`` is for the user (status, report); it may mention the other event's title.
    Drafts must never use it.
    """

    kind: RiskKind
    severity: Severity
    occurrence_key: str
    evidence: str
    other_key: str | None = None
    other_is_interview: bool = False
    cause: RiskCause = RiskCause.NONE  # the root cause, for the report


@dataclass(frozen=True, slots=True)
class Slot:
    """A proposed free interval for a rescheduled interview."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        ensure_aware(self.start, "Slot.start")
        ensure_aware(self.end, "Slot.end")


class Mode(str, Enum):
    """How an interview is held, as far as the invitation tells."""

    VIDEO = "video"
    PHONE = "phone"
    ONSITE = "onsite"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the story of one interview tells the writer; every field defaults to 'not known'.

    Filled by whoever knows the case history (the planner, the case store). The renderer words the
    draft after them: a thank-you that follows a miss apologises again; a follow-up after a sent
    apology says "once more"; a rebooked time is confirmed rather than asked for.
    """

    follows_miss: bool = False  # this draft comes after the user missed this interview (or its earlier time)
    apology_sent: bool = False  # a missed-interview apology for this case was already sent
    rebooked: Slot | None = None  # the new time both sides agreed on, when known
    agreed: bool | None = None  # did they agree to meet again? None: not known
    previous_requests: int = 0  # reschedule requests already sent for this interview
    prior_contact: bool = False  # some draft of this case was already sent (the user has written before)
    original: Slot | None = None  # the interview's time when the trouble began, when it has moved since


@dataclass(frozen=True, slots=True)
class Action:
    """A draft the planner wants to exist for one (event occurrence, kind)."""

    kind: ActionKind
    account: str
    occurrence_key: str
    recipients: tuple[Person, ...]
    risks: tuple[RiskKind, ...] = ()
    slots: tuple[Slot, ...] = ()
    recipient_timezone: str | None = None
    reason: str = "scheduling_conflict"
    call_first: bool = False  # the user should phone before (or instead of) emailing
    phone: str | None = None
    notes: tuple[str, ...] = ()  # things to tell the user (never put into the draft)
    explanation: tuple[str, ...] = field(default=())
    mode: Mode = Mode.UNKNOWN  # how the interview is held: the reason and the questions fit it
    # The time the organizer probably meant when the invitation was set up in another zone (same
    # wall-clock time in the user's zone); proposed first by the time-zone variant.
    probable: Slot | None = None
    # False when the user's and the recipient's working days share no hour: the slots are the least
    # bad hours in the user's waking day, and the draft says so.
    hours_overlap: bool = True
    case: CaseFacts = field(default_factory=CaseFacts)
    # The address of the mailbox the draft goes to (the account's email, else the user's): the key is
    # built from it, so renaming an account in the config does not re-key its drafts.
    mailbox: str = ""

    @property
    def key(self) -> str:
        """The idempotency key: (mailbox address, event occurrence, action kind)."""
        return draft_key(self.mailbox or self.account, self.occurrence_key, self.kind)


def draft_key(mailbox: str, occurrence_key: str, kind: ActionKind) -> str:
    """A short stable key carried in the ``X-Salvage-Key`` header of every draft.

    Built from the mailbox's address and the event's identity, never from a name the user may change.
    (State before schema 3 built it from the account's name; the state store re-keys those drafts.)
    """
    raw = f"{mailbox}\x1f{occurrence_key}\x1f{kind.value}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def utc_now() -> datetime:
    """The real clock, for the CLI boundary only; the core always receives ``now``."""
    return datetime.now(timezone.utc)


# ---- what the planner needs to know about the past (read from the state store by the caller) ----


class DraftState(str, Enum):
    """The fate of a draft Salvage made, as the state store last saw it."""

    PENDING = "pending"  # intent recorded, creation not yet confirmed
    UNTOUCHED = "untouched"
    EDITED = "edited"
    SENT = "sent"
    DELETED = "deleted"  # the user deleted it: never re-create for this key
    WITHDRAWN = "withdrawn"  # Salvage removed it because the reason went away


@dataclass(frozen=True, slots=True)
class PriorDraft:
    """A draft made earlier, with the event as it was when the draft was made."""

    occurrence_key: str
    kind: ActionKind
    state: DraftState
    created: datetime
    event_start: datetime | None = None
    organizer_email: str | None = None
    series_key: str | None = None
    slots: tuple[Slot, ...] = ()  # the times this draft offered
    updated: datetime | None = None  # when its fate (e.g. sent) was last seen to change


class Phase(str, Enum):
    """Where an interview's story stands (see README, "Case lifecycle")."""

    SCHEDULED = "scheduled"  # nothing wrong (yet)
    AT_RISK = "at_risk"
    RESCHEDULE_REQUESTED = "reschedule_requested"
    MISSED = "missed"
    FOLLOWED_UP = "followed_up"
    REBOOKED = "rebooked"
    CLOSED = "closed"


# Phases the user is told about in `check` / `status` (a plain scheduled interview is not a "case").
ACTIVE_PHASES = (Phase.AT_RISK, Phase.RESCHEDULE_REQUESTED, Phase.MISSED, Phase.FOLLOWED_UP, Phase.REBOOKED)


@dataclass(frozen=True)
class Case:
    """One interview's story, kept by the state store beyond the calendar's read window.

    ``event`` is the interview as last seen. The instants are facts the phase is derived from:
    ``missed_at`` when the miss was first detected or declared (wall time; the follow-up is timed from
    it), ``requested_at`` when a reschedule request first stood, ``rebooked_key``/``rebooked_start``
    the interview that replaced this one (the same key when it was moved), ``rebooks`` the case this
    interview replaces.
    """

    key: str
    account: str
    event: Event
    opened: datetime
    seen: datetime
    phase: Phase = Phase.SCHEDULED
    booked_start: datetime | None = None
    requested_at: datetime | None = None
    missed_at: datetime | None = None
    rebooked_key: str | None = None
    rebooked_start: datetime | None = None
    rebooks: str | None = None
    closed_at: datetime | None = None
    close_reason: str = ""
    gone: bool = False  # removed or cancelled while in view (not merely scrolled out of the window)
    user_missed: bool = False  # the user said so (`salvage missed`)
    reason: str | None = None  # the user's reason, if given

    @property
    def open(self) -> bool:
        return self.phase is not Phase.CLOSED


@dataclass(frozen=True, slots=True)
class Wakeup:
    """A moment the plan changes by itself (a missed check, a follow-up falling due): the service's timers."""

    when: datetime
    account: str
    occurrence_key: str
    what: str  # "missed check" | "follow-up"


@dataclass(frozen=True)
class PlanContext:
    """Facts from the past the pure planner needs; all default to 'nothing known'."""

    prior: tuple[PriorDraft, ...] = ()
    marked_missed: frozenset[str] = frozenset()  # occurrence keys the user declared missed
    reasons: dict[str, str] = field(default_factory=dict)  # occurrence key -> reason override
    missed_at: dict[str, datetime] = field(default_factory=dict)  # when a miss was first detected
    cases: tuple[Case, ...] = ()  # every case the state store keeps (open and closed)
    window: tuple[datetime, datetime] | None = None  # the read window the events come from
