"""The pipeline: poll sources → store → classify → detect → plan → render → place → track.

This is the impure shell around the pure core. Each account is isolated: a failing source or
mailbox is recorded against that account and the others go on. Drafts are made crash-safe by
recording the intent (PENDING) before creating the draft and reconciling PENDING drafts by their
``X-Salvage-Key`` header on the next pass.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from daemon.config import AccountConfig, Config
from daemon.core.cases import advance
from daemon.core.classify import classify_each
from daemon.core.copies import pick_copies
from daemon.core.detect import detect
from daemon.core.invitation import parse_invitation, with_invitation
from daemon.core.model import (
    Action,
    Case,
    Classification,
    DraftState,
    Event,
    InvitationFacts,
    PlanContext,
    Risk,
    Wakeup,
)
from daemon.core.plan import Skipped, plan_result
from daemon.core.text import one_line
from daemon.engine import snapshot
from daemon.engine.codec import instant_to_text
from daemon.engine.gcpause import gc_paused
from daemon.engine.render import Renderer
from daemon.engine.state import DraftRecord, StateStore
from providers import registry
from providers.base import (
    AuthError,
    CalendarSource,
    DraftFate,
    DraftMessage,
    DraftRef,
    DraftStore,
    InvitationEmail,
    ProviderContext,
    ProviderError,
    ThreadInfo,
    TransientError,
    Window,
)
from providers.http import HttpPool
from providers.mime import fingerprint

log = logging.getLogger(f"salvage.{__name__}")
# After a mailbox error, an interview's invitation email is looked for again this much later.
INVITATION_RETRY_ERROR = timedelta(minutes=30)
# How long an unchanged evaluation may stand in for a new one (wake-ups always end it sooner).
REUSE_FOR = timedelta(minutes=10)
# A pass that waited for another pass's evaluation may take it though it was made this much after the
# waiting pass began (its clock was read before its poll; the evaluation's after its own).
REUSE_AHEAD = timedelta(seconds=60)
# How long every account of a provider waits after one met the application's quota without a Retry-After.
SHARED_LIMIT_SECONDS = 60.0
# How long an evaluation waits for other passes' polls in flight, so that it covers them too (at
# least; twice as long as the last evaluation took, up to the maximum).
COALESCE_SECONDS, COALESCE_MAX_SECONDS = 2.0, 30.0

_FATE_STATE = {
    DraftFate.UNTOUCHED: DraftState.UNTOUCHED,
    DraftFate.EDITED: DraftState.EDITED,
    DraftFate.SENT: DraftState.SENT,
    DraftFate.DELETED: DraftState.DELETED,
}


@dataclass(frozen=True)
class Evaluation:
    """The core's view of the calendars at ``now``."""

    now: datetime
    events: tuple[Event, ...]
    by_key: dict[str, Event]
    classifications: dict[str, Classification]
    risks: tuple[Risk, ...]
    actions: tuple[Action, ...]
    skipped: tuple[Skipped, ...] = ()
    cases: dict[str, Case] = field(default_factory=dict)  # every case, brought up to date
    wakeups: tuple[Wakeup, ...] = ()  # when the plan changes by itself (the service's timers)
    window: tuple[datetime, datetime] | None = None
    # False for a plan read back from the state file (daemon.engine.snapshot): its actions, their
    # events and its wake-ups, but not every event, classification, risk and case.
    whole: bool = True

    @property
    def interviews(self) -> list[Event]:
        return [e for e in self.events if self.classifications.get(e.occurrence_key, _NO).is_interview]

    def risks_for(self, occurrence_key: str) -> list[Risk]:
        return [r for r in self.risks if r.occurrence_key == occurrence_key]

    def actions_for(self, occurrence_key: str) -> list[Action]:
        return [a for a in self.actions if a.occurrence_key == occurrence_key]

    def event_for(self, occurrence_key: str) -> Event | None:
        """The event in view, else the interview as its case last saw it."""
        found = self.by_key.get(occurrence_key)
        if found is None and occurrence_key in self.cases:
            return self.cases[occurrence_key].event
        return found


_NO = Classification(occurrence_key="", is_interview=False, score=0.0, reasons=())


@dataclass(frozen=True)
class _Calendar:
    """One account's stored events, decoded and classified, as of its events version."""

    version: int
    rows: list[tuple[str, str, Event]]  # (start, end) as the store compares them, and the event
    verdicts: dict[str, Classification]  # by source id


@dataclass(frozen=True)
class _Made:
    """An evaluation and the store's generation just before it was made: it reflects every change up to
    that generation, so any pass whose own writes ended at or before it may act on it."""

    evaluation: Evaluation
    generation: int


class Result(StrEnum):
    """What a pass did with one draft (compared across the engine, the CLI and the service)."""

    CREATED = "created"
    UPDATED = "updated"
    KEPT = "kept"
    EXISTS = "exists"  # dry run: the draft is there already
    WOULD_CREATE = "would-create"  # dry run
    WOULD_CHECK = "would-check"  # dry run: a live draft whose reason is gone
    EDITED = "edited"
    SENT = "sent"
    DELETED = "deleted"
    WITHDRAWN = "withdrawn"
    DONE_SENT = "done (sent)"  # sent in an earlier pass
    DONE_DELETED = "done (deleted)"  # deleted by the user in an earlier pass: never re-created
    FAILED = "failed"


_FATE_RESULT = {DraftState.EDITED: Result.EDITED, DraftState.SENT: Result.SENT, DraftState.DELETED: Result.DELETED}


@dataclass
class Outcome:
    """What happened to one planned or live draft in a pass."""

    key: str
    account: str
    occurrence_key: str
    kind: str
    result: Result
    detail: str = ""
    draft: DraftMessage | None = None
    notes: tuple[str, ...] = ()
    call_first: bool = False
    phone: str | None = None


@dataclass
class PollOutcome:
    account: str
    ok: bool
    message: str = ""
    changed: int = 0
    needs_auth: bool = False
    retry_after: float | None = None
    problems: tuple[str, ...] = ()


@dataclass
class PassReport:
    now: datetime
    polls: list[PollOutcome] = field(default_factory=list)
    evaluation: Evaluation | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed_accounts(self) -> list[PollOutcome]:
        return [p for p in self.polls if not p.ok]


class Engine:
    """Runs passes of the pipeline for a config against a state store."""

    def __init__(
        self,
        config: Config,
        store: StateStore,
        *,
        open_calendar: Callable[[AccountConfig, ProviderContext], CalendarSource] = registry.open_calendar,
        open_drafts: Callable[[AccountConfig, ProviderContext], DraftStore] = registry.open_drafts,
        renderer: Renderer | None = None,
        read_mail: bool = True,
    ) -> None:
        self.config = config
        self.read_mail = read_mail
        self.store = store
        self._open_calendar = open_calendar
        self._open_drafts = open_drafts
        self.renderer = renderer or Renderer(config)
        self._sources: dict[str, CalendarSource] = {}
        self._mailboxes: dict[str, DraftStore] = {}
        self._contexts: dict[str, ProviderContext] = {}  # one per account: its shared connections
        self._http = HttpPool()  # one HTTP client per CA bundle for every account, kept across passes
        self._last: _Made | None = None  # the newest evaluation a pass acted on
        self._evaluating = threading.Lock()  # one evaluation at a time: passes waiting for it take it
        self._calendars: dict[str, _Calendar] = {}  # per account, kept until its events change
        self._calendars_lock = threading.Lock()
        self._polling = 0  # polls in flight in other passes' threads
        self._fingerprint: tuple[Config, str] | None = None  # of the config and this Salvage, for kept plans
        self._polled = threading.Condition()
        self._coalesce_seconds = COALESCE_SECONDS
        self._held_back: dict[str, datetime] = {}  # provider -> until when its app's quota is spent
        # True when this engine is the state's only user while it runs (`run --once` holds the
        # instance lock and runs one pass in one thread): a pass that changed drafts then plans once
        # more over what it left, so the next process finds a plan it can act on.
        self.alone = False
        self._warned: set[tuple[str, str]] = set()  # (account, problem) already logged as a warning
        # (account, source id) -> when to try an invitation email again after a mailbox error.
        self._invitation_errors: dict[tuple[str, str], datetime] = {}
        self._adopted = False
        self._adopting = threading.Lock()

    # ---- sources --------------------------------------------------------------------------------

    def window(self, now: datetime) -> Window:
        w = self.config.window
        return Window(start=now - timedelta(days=w.past_days), end=now + timedelta(days=w.future_days))

    def accounts(self, names: Collection[str] | None = None) -> list[AccountConfig]:
        return [a for a in self.config.accounts if a.enabled and (names is None or a.name in names)]

    def _context(self, account: AccountConfig) -> ProviderContext:
        if account.name not in self._contexts:
            self._contexts[account.name] = registry.context(account, self.config, http_clients=self._http)
        return self._contexts[account.name]

    def _source(self, account: AccountConfig) -> CalendarSource:
        if account.name not in self._sources:
            self._sources[account.name] = self._open_calendar(account, self._context(account))
        return self._sources[account.name]

    def _mailbox(self, account: AccountConfig) -> DraftStore:
        if account.name not in self._mailboxes:
            self._mailboxes[account.name] = self._open_drafts(account, self._context(account))
        return self._mailboxes[account.name]

    def forget_connections(self, account: str | None = None) -> None:
        """Drop cached provider objects (after a config reload or re-auth)."""
        self._last = None
        for cache in (self._sources, self._mailboxes):
            for name in list(cache):
                if account is None or name == account:
                    closer = getattr(cache.pop(name), "close", None)
                    if callable(closer):
                        try:
                            closer()
                        except Exception:  # noqa: BLE001 - closing must never fail a pass
                            log.debug("closing %s failed", name, exc_info=True)
        for name in list(self._contexts):
            if account is None or name == account:
                self._contexts.pop(name).close()  # the account's shared sessions

    def poll(self, account: AccountConfig, now: datetime) -> PollOutcome:
        """Fetch one account's calendar into the store. Failures are recorded, never raised."""
        kind = account.calendar.kind
        held = self._held_back.get(kind)
        if held is not None and now < held:
            # The application's quota for this provider is spent: asking for this account too would
            # only spend the next minute's share. Its poll comes again when the limit is over.
            wait = (held - now).total_seconds()
            message = f"{kind}: the API's rate limit for this application is reached; waiting {wait:.0f}s"
            self.store.record_failure(account.name, now, message)
            return PollOutcome(account.name, False, message, retry_after=wait)
        try:
            source = self._source(account)
            result = source.fetch(self.window(now), self.store.cursor(account.name))
            if not result.complete and not result.unchanged and not source.capabilities.incremental:
                # Applying a delta from a source that keeps no sync state would drop events.
                raise ProviderError("the calendar sent changes only, but it is not an incremental source")
            changed = self.store.apply_fetch(account.name, result, now)
        except AuthError as exc:
            self._failed(account.name, now, str(exc), needs_auth=True)
            return PollOutcome(account.name, False, str(exc), needs_auth=True)
        except TransientError as exc:
            self._failed(account.name, now, str(exc))
            if exc.shared:
                until = now + timedelta(seconds=exc.retry_after or SHARED_LIMIT_SECONDS)
                if until > self._held_back.get(kind, now):
                    self._held_back[kind] = until
                    log.warning("%s: the application's rate limit is reached; every %s account waits until %s",
                                account.name, kind, until.isoformat(timespec="seconds"))
            return PollOutcome(account.name, False, str(exc), retry_after=exc.retry_after)
        except ProviderError as exc:
            self._failed(account.name, now, str(exc))
            return PollOutcome(account.name, False, str(exc))
        except sqlite3.DatabaseError:
            raise  # the state file, not this account: the caller says so once for all
        except Exception as exc:  # noqa: BLE001 - one account's bug must not stop the others
            log.debug("poll of %s crashed", account.name, exc_info=True)
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            self._failed(account.name, now, message)
            return PollOutcome(account.name, False, message)
        was = self.store.account_status(account.name)
        for problem in result.problems:
            self._warn_once(account.name, problem)
        if was is not None and was.failures == 0 and changed:
            log.debug("%s: %d events changed", account.name, changed)
        return PollOutcome(account.name, True, changed=changed, problems=result.problems)

    def _warn_once(self, account: str, problem: str) -> None:
        """Warn about a problem the first time this engine sees it, then only at debug level.

        A malformed event or a mailbox that refuses us comes back at every pass of a long-running
        service; `salvage status` shows the live state, the log need not repeat it every minute.
        """
        level = logging.DEBUG if (account, problem) in self._warned else logging.WARNING
        self._warned.add((account, problem))
        log.log(level, "%s: %s", account, problem)

    def _failed(self, account: str, now: datetime, message: str, *, needs_auth: bool = False,
                from_poll: bool = True) -> None:
        first = self.store.record_failure(account, now, message, needs_auth=needs_auth)
        if not from_poll:
            # The mailbox refused us after a good poll had cleared the error: only warn once.
            first = first and (account, message) not in self._warned
        self._warned.add((account, message))
        if first:  # log once when it starts failing; the service logs the recovery
            if needs_auth:
                log.error("%s: needs `salvage auth %s`: %s", account, account, message)
            else:
                log.warning("%s: %s", account, message)

    # ---- the core -------------------------------------------------------------------------------

    def evaluate(self, now: datetime) -> Evaluation:
        """Classify, detect and plan over every stored event of every enabled account.

        Unless the engine was made with ``read_mail=False``, each upcoming interview's invitation email is
        read first (once per version of the event, through its account's mailbox where that can read
        mail) and its facts attached; facts already kept with stored events are used either way.
        """
        window = self.window(now)
        calendars = self._stored_calendars([a.name for a in self.accounts()])
        start, end = instant_to_text(window.start), instant_to_text(window.end)
        # The same invitation on two calendars: the copy the core's rule picks (daemon.core.copies).
        by_key = pick_copies((e for c in calendars.values() for s, t, e in c.rows if t > start and s < end),
                             self.config.user.zone)
        events = tuple(sorted(by_key.values(), key=lambda e: (e.span(self.config.user.zone)[0], e.occurrence_key)))
        classifications = {key: calendars[e.account].verdicts[e.source_id] for key, e in by_key.items()}
        if self.read_mail:
            events = self._with_invitations(events, classifications, now)
            by_key = {e.occurrence_key: e for e in events}
        return self._decide(now, events, by_key, classifications)

    def _decide(self, now: datetime, events: tuple[Event, ...], by_key: dict[str, Event],
                classifications: dict[str, Classification]) -> Evaluation:
        """Detect and plan over classified events, with the state store's view of the past as of now."""
        context = self._plan_context(self.window(now))
        with gc_paused():
            risks = detect(events, classifications, self.config, now, marked_missed=context.marked_missed)
            result = plan_result(events, classifications, risks, self.config, now, context)
        return Evaluation(now, events, by_key, classifications, tuple(risks), tuple(result.actions),
                          tuple(result.skipped), result.cases, tuple(result.wakeups), context.window)

    def _stored_calendars(self, names: list[str]) -> dict[str, _Calendar]:
        """Every named account's stored events, decoded and classified; only changed accounts are read.

        An account's events version (kept by the store, in any process) says when its events changed;
        until then its decoded events and their classifications are kept, so evaluating a thousand
        accounts after one of them changed decodes and classifies that one.
        """
        with self._calendars_lock:
            versions = self.store.event_versions()
            for name in list(self._calendars):
                if name not in names:
                    del self._calendars[name]
            for name in names:
                kept = self._calendars.get(name)
                if kept is not None and kept.version == versions.get(name, 0):
                    continue
                version, rows = self.store.account_events(name)
                with gc_paused():
                    verdicts = classify_each((e for _, _, e in rows), self.config)
                self._calendars[name] = _Calendar(version, rows, {
                    e.source_id: v for (_, _, e), v in zip(rows, verdicts, strict=True)})
            return {name: self._calendars[name] for name in names}

    def _plan_context(self, window: Window) -> PlanContext:
        """The planner's view of the past: drafts, the user's statements, the cases of enabled accounts."""
        context = self.store.plan_context()
        enabled = {a.name for a in self.accounts()}
        return replace(context, cases=tuple(c for c in context.cases if c.account in enabled),
                       window=(window.start, window.end))

    def track(self, evaluation: Evaluation, now: datetime) -> None:
        """Save the cases, brought up to date once more with the drafts' fates seen in this pass."""
        context = self._plan_context(self.window(now))
        cases = advance(evaluation.cases.values(), evaluation.events, evaluation.classifications,
                        evaluation.risks, context.prior, self.config, now, marked=context.marked_missed,
                        detected_at=context.missed_at, window=context.window)
        self.store.save_cases(cases.values(), now)

    # ---- invitation emails -----------------------------------------------------------------------

    def _with_invitations(self, events: tuple[Event, ...], classifications: dict[str, Classification],
                          now: datetime) -> tuple[Event, ...]:
        """Upcoming interviews with their invitation email's facts attached (phones, links, stated time)."""
        out: list[Event] = []
        for event in events:
            verdict = classifications.get(event.occurrence_key)
            start = _start(event)
            if verdict is None or not verdict.is_interview or start is None or start < now or event.cancelled:
                out.append(event)
                continue
            facts = self._invitation(event, now)
            out.append(with_invitation(event, facts) if facts is not None else event)
        return tuple(out)

    def _invitation(self, event: Event, now: datetime) -> InvitationFacts | None:
        """The facts of an event's invitation email: read once per version of the event and kept with it
        in the state store (an email not found is kept as empty facts); after a mailbox error, retried."""
        if event.invitation is not None:
            return event.invitation
        version = (event.account, event.source_id)
        if now < self._invitation_errors.get(version, now):
            return None
        account = next((a for a in self.config.accounts if a.name == event.account), None)
        if account is None:
            return None
        try:
            mailbox = self._mailbox(account)
            if not mailbox.capabilities.reads_invitations:
                return None
            email: InvitationEmail | None = mailbox.read_invitation(event)  # type: ignore[attr-defined]
        except AuthError as exc:  # the drafts step reports it and marks the account
            log.debug("%s: cannot read the invitation for %r: %s", account.name, event.title, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - the email is extra evidence; its absence is fine
            self._warn_once(account.name, f"could not read an invitation email: {one_line(str(exc))}")
            self._invitation_errors[version] = now + INVITATION_RETRY_ERROR
            return None
        facts = parse_invitation(email.text, email.subject) if email is not None else InvitationFacts()
        try:
            self.store.set_invitation(event.account, event.source_id, facts)
        except Exception:  # noqa: BLE001 - not kept: it is read again next time, no harm
            log.debug("keeping the invitation facts of %r failed", event.title, exc_info=True)
        return facts

    # ---- drafts ---------------------------------------------------------------------------------

    def render(self, action: Action, event: Event, now: datetime, thread: ThreadInfo | None = None) -> DraftMessage:
        """The draft for an action, rendered as of ``now`` (drafts mention short notice)."""
        return self.renderer.render(action, event, thread=thread, now=now)

    def reconcile(
        self,
        evaluation: Evaluation,
        now: datetime,
        *,
        accounts: Collection[str] | None = None,
        dry_run: bool = False,
    ) -> list[Outcome]:
        """Make the mailboxes match the plan: create, update, withdraw; record every fate."""
        selected = {a.name for a in self.accounts(accounts)}
        self._adopt_mailboxes()
        errors: dict[str, str] = {}  # account -> the first mailbox error of this pass
        outcomes: list[Outcome] = []
        planned = [a for a in evaluation.actions if a.account in selected]
        planned_keys = {a.key for a in planned}
        for skip in evaluation.skipped:
            event = evaluation.by_key.get(skip.occurrence_key)
            if skip.warn and event is not None and event.account in selected:
                self._warn_once(event.account, f"{_describe_event(event)}: {skip.kind.value}: {skip.why}")
        for action in planned:
            outcomes.append(self._guard(now, action.key, action.account, action.occurrence_key, action.kind.value,
                                        partial(self._realise, action, evaluation, now, dry_run), errors))
        for record in self.store.drafts(states=(DraftState.PENDING, DraftState.UNTOUCHED, DraftState.EDITED)):
            if record.account in selected and record.key not in planned_keys:
                outcomes.append(self._guard(now, record.key, record.account, record.occurrence_key, record.kind.value,
                                            partial(self._retire, record, now, dry_run), errors))
        for account, message in errors.items():
            # Once per pass and account, so `salvage status` shows it (the draft's own warning was logged).
            self.store.record_failure(account, now, f"mailbox: {message}")
        return outcomes

    def _guard(self, now: datetime, key: str, account: str, occurrence: str, kind: str,
               step: Callable[[], Outcome], errors: dict[str, str]) -> Outcome:
        try:
            return step()
        except AuthError as exc:
            self._failed(account, now, str(exc), needs_auth=True, from_poll=False)
            return Outcome(key, account, occurrence, kind, Result.FAILED, f"needs `salvage auth {account}`: {exc}")
        except ProviderError as exc:
            # Never a fate: the draft keeps its state and is looked at again at the next pass.
            self._warn_once(account, f"draft {key[:8]}: {exc}")
            errors.setdefault(account, str(exc))
            return Outcome(key, account, occurrence, kind, Result.FAILED, str(exc))
        except sqlite3.DatabaseError:
            raise  # a damaged state file is not this draft's failure; the caller reports it once
        except Exception as exc:  # noqa: BLE001 - one draft's failure must not stop the others
            log.warning("%s: draft %s failed: %s: %s", account, key[:8], type(exc).__name__, exc)
            log.debug("draft failure", exc_info=True)
            return Outcome(key, account, occurrence, kind, Result.FAILED, f"{type(exc).__name__}: {exc}")

    def _realise(self, action: Action, evaluation: Evaluation, now: datetime, dry_run: bool) -> Outcome:
        event = evaluation.event_for(action.occurrence_key)
        assert event is not None, "the planner plans only for events it was given or cases it keeps"
        account = self.config.account(action.account)
        def outcome(result: Result, detail: str = "", draft: DraftMessage | None = None) -> Outcome:
            return _for_action(action, result, detail, draft)

        record = self.store.draft(action.key)
        if record is not None and record.state in (DraftState.DELETED, DraftState.SENT):
            return outcome(Result.DONE_DELETED if record.state is DraftState.DELETED else Result.DONE_SENT,
                           "you deleted this draft; it is not re-created" if record.state is DraftState.DELETED
                           else "already sent")
        if dry_run:
            draft = self.render(action, event, now)
            verb = Result.WOULD_CREATE if record is None or record.state is DraftState.WITHDRAWN else Result.EXISTS
            return outcome(verb, draft=draft)
        mailbox = self._mailbox(account)
        if record is not None and record.state is DraftState.PENDING:
            found = mailbox.find_by_key(action.key)
            if found is not None:
                self.store.update_draft(action.key, DraftState.UNTOUCHED, now, ref=found)
                record = self.store.draft(action.key)
            else:
                record = None
        if record is None or record.state is DraftState.WITHDRAWN or record.ref is None:
            return self._create(action, event, mailbox, now)
        fate = self._fate(mailbox, record, now)
        if fate is None:  # we had withdrawn it when a crash came; the reason is back: make it anew
            return self._create(action, event, mailbox, now)
        record = self.store.draft(action.key) or record
        assert record.ref is not None
        if fate is DraftFate.UNTOUCHED:
            draft = self.render(action, event, now, self._thread_for(record))
            same = fingerprint(draft.text) == record.ref.fingerprint
            if same or not mailbox.capabilities.detects_edits:  # never overwrite what may be the user's
                if record.state is not DraftState.UNTOUCHED:
                    self.store.update_draft(action.key, DraftState.UNTOUCHED, now)
                return outcome(Result.KEPT, "" if same else "this mailbox cannot tell your edits; left as it is",
                               draft=draft)
            # Say what is about to change first: a crash after the rewrite and before the commit must
            # not make our own new text look like the user's edit.
            self.store.begin_change(action.key, json.dumps({"op": "update", "fingerprint": fingerprint(draft.text)}))
            ref = mailbox.update(record.ref, draft)
            self.store.update_draft(action.key, DraftState.UNTOUCHED, now, ref=ref,
                                    event_start=_start(event), subject=draft.subject, slots=action.slots)
            log.info("%s: updated %s draft for %r", action.account, action.kind.value, event.title)
            return outcome(Result.UPDATED, "the interview or the plan changed", draft)
        state = _FATE_STATE[fate]
        if state is not record.state:
            self.store.update_draft(action.key, state, now)
        detail = {
            DraftState.EDITED: "you edited it; left alone",
            DraftState.SENT: "sent",
            DraftState.DELETED: "you deleted it; it will not be re-created" if mailbox.capabilities.detects_sent
            else "you sent or deleted it; it will not be re-created",
        }[state]
        return outcome(_FATE_RESULT[state], detail)

    @staticmethod
    def _thread_for(record: DraftRecord) -> ThreadInfo | None:
        ref = record.ref
        if ref is None or not ref.extra.get("message_id"):
            return None
        references = tuple(r for r in ref.extra.get("references", "").split() if r)
        return ThreadInfo(thread_id=ref.thread_id, message_id=ref.extra["message_id"],
                          references=references, subject=ref.extra.get("thread_subject"))

    def _create(self, action: Action, event: Event, mailbox: DraftStore, now: datetime) -> Outcome:
        thread: ThreadInfo | None = None
        try:
            if mailbox.capabilities.threads_replies:
                thread = mailbox.find_thread(event)
        except AuthError:
            raise
        except Exception as exc:  # noqa: BLE001 - threading is a nicety; an unthreaded draft is fine
            log.info("%s: could not look up the invitation thread: %s", action.account, exc)
        draft = self.render(action, event, now, thread)
        organizer = event.organizer.email if event.organizer else None
        # The mailbox, not the state file, is the truth about what exists: with the state lost,
        # replaced or pointing elsewhere, a draft made earlier is found by its key, never made twice.
        found = mailbox.find_by_key(action.key)
        self.store.record_intent(
            DraftRecord(
                key=action.key,
                account=action.account,
                occurrence_key=action.occurrence_key,
                kind=action.kind,
                state=DraftState.PENDING,
                ref=None,
                created=now,
                updated=now,
                event_start=_start(event),
                organizer_email=organizer,
                series_key=event.series_key,
                subject=draft.subject,
                recipients=", ".join(a.email for a in draft.to),
                note="; ".join(action.notes),
                slots=action.slots,
                mailbox=action.mailbox,
            )
        )
        if found is not None:
            if found.fingerprint == fingerprint(draft.text):
                self.store.update_draft(action.key, DraftState.UNTOUCHED, now, ref=found)
                log.info("%s: found the %s draft for %r already in the mailbox", action.account,
                         action.kind.value, event.title)
                return _for_action(action, Result.KEPT, "already in your Drafts", draft)
            # Other words than ours now: your edit, or our older text. We cannot tell, so it is yours.
            # The ref carries the fingerprint of our text, so the draft keeps reading as edited.
            self.store.update_draft(action.key, DraftState.EDITED, now,
                                    ref=replace(found, fingerprint=fingerprint(draft.text)))
            log.info("%s: found the %s draft for %r in the mailbox with other content; leaving it alone",
                     action.account, action.kind.value, event.title)
            return _for_action(action, Result.EDITED, "found in your Drafts with other content; left alone", draft)
        ref = mailbox.create(draft)
        if thread is not None and thread.message_id:
            extra = dict(ref.extra)
            extra.setdefault("message_id", thread.message_id)
            extra.setdefault("references", " ".join(thread.references))
            if thread.subject:
                extra.setdefault("thread_subject", thread.subject)
            ref = DraftRef(ref.id, ref.fingerprint, ref.thread_id or thread.thread_id, ref.created, extra)
        self.store.update_draft(action.key, DraftState.UNTOUCHED, now, ref=ref)
        log.info("%s: created %s draft for %r to %s", action.account, action.kind.value, event.title,
                 ", ".join(a.email for a in draft.to))
        return _for_action(action, Result.CREATED, draft=draft)

    def _retire(self, record: DraftRecord, now: datetime, dry_run: bool) -> Outcome:
        """A live draft whose reason is gone: withdraw it if untouched, else record its fate."""
        def outcome(result: Result, detail: str = "") -> Outcome:
            return Outcome(record.key, record.account, record.occurrence_key, record.kind.value, result, detail)

        if dry_run:
            return outcome(Result.WOULD_CHECK, "reason gone")
        mailbox = self._mailbox(self.config.account(record.account))
        ref = record.ref
        if record.state is DraftState.PENDING:
            ref = mailbox.find_by_key(record.key)
            if ref is None:
                self.store.update_draft(record.key, DraftState.WITHDRAWN, now)
                return outcome(Result.WITHDRAWN, "never created; reason gone")
        assert ref is not None
        if record.ref is not None:
            fate = self._fate(mailbox, record, now)
            if fate is None:
                return outcome(Result.WITHDRAWN, "the reason for it is gone")
            ref = (self.store.draft(record.key) or record).ref or ref
        else:
            fate = mailbox.fate(ref)
        if fate is DraftFate.UNTOUCHED:
            self.store.begin_change(record.key, json.dumps({"op": "withdraw"}))  # before the unlink
            mailbox.delete(ref)
            self.store.update_draft(record.key, DraftState.WITHDRAWN, now, ref=ref)
            log.info("%s: withdrew %s draft (reason gone)", record.account, record.kind.value)
            return outcome(Result.WITHDRAWN, "the reason for it is gone")
        state = _FATE_STATE[fate]
        if state is not record.state:
            self.store.update_draft(record.key, state, now)
        detail = "reason gone, but you edited it: left alone" if state is DraftState.EDITED else state.value
        return outcome(_FATE_RESULT[state], detail)

    def _fate(self, mailbox: DraftStore, record: DraftRecord, now: datetime) -> DraftFate | None:
        """The draft's fate, finishing a change a crash interrupted; None: it is withdrawn (by us).

        A change is written down before it is made in the mailbox (:meth:`StateStore.begin_change`).
        Found pending here, it means the process stopped between the change and its commit: a draft
        that carries the new text is our update, not the user's edit; a draft that is gone is our
        withdrawal, not the user's "no".
        """
        assert record.ref is not None
        fate = mailbox.fate(record.ref)
        if record.intent is None:
            return fate
        try:
            intent = json.loads(record.intent)
        except ValueError:
            intent = {}
        op = intent.get("op") if isinstance(intent, dict) else None
        if op == "update" and fate is DraftFate.EDITED and isinstance(intent.get("fingerprint"), str):
            landed = replace(record.ref, fingerprint=intent["fingerprint"])
            if mailbox.fate(landed) is DraftFate.UNTOUCHED:
                self.store.update_draft(record.key, DraftState.UNTOUCHED, now, ref=landed)
                return DraftFate.UNTOUCHED
        if op == "withdraw" and fate is DraftFate.DELETED:
            self.store.update_draft(record.key, DraftState.WITHDRAWN, now)
            log.info("%s: finished withdrawing %s draft %s", record.account, record.kind.value, record.key[:8])
            return None
        self.store.update_draft(record.key, record.state, now)  # the change never reached the mailbox
        return fate

    def _adopt_mailboxes(self) -> None:
        """Once per engine: drafts keyed by an account's name get their mailbox key (schema 3)."""
        if self._adopted:
            return
        with self._adopting:  # the passes of many accounts start at once: one of them does it
            if self._adopted:
                return
            changed = self.store.adopt_mailboxes(self.config.mailboxes())
            if changed:
                log.info("state: %d draft(s) now keyed by their mailbox address", changed)
            self._adopted = True

    # ---- a whole pass ---------------------------------------------------------------------------

    def run_once(self, now: datetime, *, dry_run: bool = False, accounts: Collection[str] | None = None,
                 poll: bool = True) -> PassReport:
        """Poll (some) accounts, evaluate everything, reconcile drafts of those accounts.

        The evaluation is shared (see :meth:`evaluation`): a pass whose poll changed nothing acts on the
        last one, and passes that end their polls while another pass evaluates take that evaluation
        when it covers their changes, so a round of many accounts' passes evaluates a few times, not
        once per account.
        """
        report = PassReport(now=now)
        selected = self.accounts(accounts)
        if poll:
            with self._polled:
                self._polling += 1
            try:
                for account in selected:
                    report.polls.append(self.poll(account, now))
            finally:
                with self._polled:
                    self._polling -= 1
                    self._polled.notify_all()
        evaluation, fresh = self.evaluation(now, dry_run=dry_run)
        report.evaluation = evaluation
        report.outcomes = self.reconcile(evaluation, now, accounts=[a.name for a in selected], dry_run=dry_run)
        quiet = all(o.result in ("kept", "exists") for o in report.outcomes)
        if not dry_run and (fresh or not quiet):
            # A kept plan has no cases to bring up to date: something happened, so look at everything.
            self.track(evaluation if evaluation.whole else self.evaluate(now), now)
        if self.alone and not dry_run and not quiet and evaluation.whole:
            self._plan_again(evaluation)
        return report

    def _plan_again(self, evaluation: Evaluation) -> None:
        """Plan once more over the state this pass left (its drafts, cases and risks) and keep that plan.

        The events and their classifications are the evaluation's: nobody else wrote the state
        meanwhile (:attr:`alone`), so only what this pass itself wrote can differ, and that is what is
        read again. The next process whose polls change nothing then acts on this plan.
        """
        generation = self.store.generation()
        again = self._decide(evaluation.now, evaluation.events, evaluation.by_key, evaluation.classifications)
        self._last = _Made(again, generation)
        self._keep_plan(again, generation)

    def evaluation(self, now: datetime, *, dry_run: bool = False) -> tuple[Evaluation, bool]:
        """The evaluation a pass at ``now`` acts on, and whether it was made for this pass.

        One evaluation is made at a time. A pass takes the newest one instead of making its own when
        that one reflects every change the store had when the pass asked (its generation counts every
        change to what the planner reads, in any process), was made at most :data:`REUSE_FOR` before
        ``now`` (or :data:`REUSE_AHEAD` after it) and no wake-up of its plan has come due since. A dry
        run always evaluates afresh and records nothing.
        """
        if dry_run:
            return self.evaluate(now), True
        wanted = self.store.generation()
        with self._evaluating:
            if self._last is None:  # a new engine: the plan the last one left, if nothing changed since
                self._last = self._kept_plan(wanted)
            last = self._last
            if last is not None and last.generation >= wanted and _still_true(last.evaluation, now):
                return last.evaluation, False
            # Other passes' polls about to end are waited for a moment: one evaluation then serves them
            # all (a service starting with a thousand accounts evaluates a few times, not a thousand).
            with self._polled:
                self._polled.wait_for(lambda: self._polling == 0, timeout=self._coalesce_seconds)
            generation = self.store.generation()
            began = time.monotonic()
            evaluation = self.evaluate(now)
            # The bigger the evaluation, the longer the next one waits for polls to end, so that
            # evaluating never takes more than about a third of the time while many polls come in.
            took = time.monotonic() - began
            self._coalesce_seconds = min(COALESCE_MAX_SECONDS, max(COALESCE_SECONDS, 2 * took))
            log.debug("evaluated %d events in %.2fs", len(evaluation.events), took)
            self.store.record_risks(evaluation.risks, evaluation.by_key, now)
            self._last = _Made(evaluation, generation)
            self._keep_plan(evaluation, generation)
            return evaluation, True

    def _plan_fingerprint(self) -> str:
        if self._fingerprint is None or self._fingerprint[0] is not self.config:
            self._fingerprint = (self.config, snapshot.fingerprint(self.config))
        return self._fingerprint[1]

    def _keep_plan(self, evaluation: Evaluation, generation: int) -> None:
        """Write the plan down for the next process (see daemon.engine.snapshot)."""
        events = {a.occurrence_key: e for a in evaluation.actions
                  if (e := evaluation.event_for(a.occurrence_key)) is not None}
        kept = snapshot.Snapshot(evaluation.now, evaluation.window, evaluation.actions, evaluation.wakeups, events)
        try:
            data = snapshot.dump(kept, self._plan_fingerprint())
        except Exception:  # noqa: BLE001 - a kept plan is a shortcut; without it the next pass plans afresh
            log.debug("the plan could not be written down", exc_info=True)
            return
        self.store.save_plan(generation, data)

    def _kept_plan(self, generation: int) -> _Made | None:
        """The plan the state file keeps, if it reflects exactly ``generation`` and this configuration."""
        found = self.store.load_plan()
        if found is None or found[0] != generation:
            return None
        try:
            kept = snapshot.load(found[1], self._plan_fingerprint())
        except Exception:  # noqa: BLE001 - see _keep_plan
            log.debug("the kept plan could not be read", exc_info=True)
            return None
        if kept is None:
            return None
        evaluation = Evaluation(kept.now, tuple(kept.events.values()), dict(kept.events), {}, (), kept.actions,
                                wakeups=kept.wakeups, window=kept.window, whole=False)
        return _Made(evaluation, generation)

    def close(self) -> None:
        self.forget_connections()
        self._http.close()


def _still_true(evaluation: Evaluation, now: datetime) -> bool:
    """Whether an evaluation may stand for one made at ``now``: recent enough, no wake-up passed since."""
    if not evaluation.now - REUSE_AHEAD <= now < evaluation.now + REUSE_FOR:
        return False
    return not any(evaluation.now < w.when <= now for w in evaluation.wakeups)


def _describe_event(event: Event) -> str:
    """An event named for a log line: its title (one neutral line) and start."""
    start = event.start.isoformat() if event.start is not None else "?"
    return f"event {one_line(event.title, 80)!r} at {start}"


def _for_action(action: Action, result: Result, detail: str = "", draft: DraftMessage | None = None) -> Outcome:
    return Outcome(action.key, action.account, action.occurrence_key, action.kind.value, result, detail, draft,
                   action.notes, action.call_first, action.phone)


def _start(event: Event) -> datetime | None:
    return event.start if isinstance(event.start, datetime) else None


def find_events(evaluation: Evaluation, query: str, *, interviews_only: bool = False) -> list[Event]:
    """Events matching a short id, an occurrence key, or (case-insensitive) a title substring."""
    from daemon.core.ids import short_id

    pool: Iterable[Event] = evaluation.interviews if interviews_only else evaluation.events
    pool = list(pool)
    exact = [e for e in pool if query in (e.occurrence_key, e.source_id) or short_id(e.occurrence_key) == query]
    if exact:
        return exact
    prefix = [e for e in pool if len(query) >= 4 and short_id(e.occurrence_key).startswith(query)]
    if prefix:
        return prefix
    needle = query.casefold()
    return [e for e in pool if needle in e.title.casefold()]
