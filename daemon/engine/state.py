"""The SQLite state store: events seen, risks found, drafts made and their fate, account health,
and a case per interview (its story, kept beyond the calendar's read window).

One file (WAL mode, versioned schema with forward migrations). Every write is one transaction, so
a crash leaves either the old or the new state, never half of each. Instants are stored as UTC
ISO 8601 text.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import wraps
from pathlib import Path
from typing import Any

from daemon.core.model import (
    ActionKind,
    Case,
    DraftState,
    Event,
    InvitationFacts,
    Phase,
    PlanContext,
    PriorDraft,
    Risk,
    Slot,
    draft_key,
)
from daemon.engine.codec import event_from_json, event_to_json, instant_from_text, instant_to_text
from daemon.paths import private_dir, private_file
from providers.base import DraftRef, FetchResult

MIGRATIONS: tuple[str, ...] = (
    # 1: initial schema
    """
    CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        cursor TEXT,
        last_poll TEXT,
        last_success TEXT,
        next_poll TEXT,
        error TEXT,
        error_since TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        needs_auth INTEGER NOT NULL DEFAULT 0,
        problems TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE events (
        account TEXT NOT NULL,
        source_id TEXT NOT NULL,
        occurrence_key TEXT NOT NULL,
        start_utc TEXT NOT NULL,
        end_utc TEXT NOT NULL,
        data TEXT NOT NULL,
        seen TEXT NOT NULL,
        PRIMARY KEY (account, source_id)
    );
    CREATE INDEX events_occurrence ON events (occurrence_key);
    CREATE TABLE drafts (
        key TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        occurrence_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        ref TEXT,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        event_start TEXT,
        organizer_email TEXT,
        series_key TEXT,
        subject TEXT NOT NULL DEFAULT '',
        recipients TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX drafts_state ON drafts (state);
    CREATE TABLE marks (
        occurrence_key TEXT PRIMARY KEY,
        missed_at TEXT,
        reason TEXT
    );
    CREATE TABLE risks (
        occurrence_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        account TEXT NOT NULL DEFAULT '',
        severity TEXT NOT NULL,
        evidence TEXT NOT NULL,
        cause TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        event_start TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (occurrence_key, kind)
    );
    """,
    # 2: a case per interview, its phase history, and the slots each draft offered
    """
    CREATE TABLE cases (
        occurrence_key TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        phase TEXT NOT NULL,
        event TEXT NOT NULL,
        event_start TEXT NOT NULL,
        opened TEXT NOT NULL,
        seen TEXT NOT NULL,
        booked_start TEXT,
        requested_at TEXT,
        missed_at TEXT,
        rebooked_key TEXT,
        rebooked_start TEXT,
        rebooks TEXT,
        closed_at TEXT,
        close_reason TEXT NOT NULL DEFAULT '',
        gone INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX cases_start ON cases (event_start);
    CREATE TABLE case_log (
        occurrence_key TEXT NOT NULL,
        at TEXT NOT NULL,
        phase TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX case_log_key ON case_log (occurrence_key);
    ALTER TABLE drafts ADD COLUMN slots TEXT NOT NULL DEFAULT '[]';
    """,
    # 3: drafts keyed by mailbox address (a renamed account keeps its drafts); the mailbox a key was
    # built from ('' = the old account-name key, re-keyed by StateStore.adopt_mailboxes); the change
    # about to be made to a draft in its mailbox (withdraw/update), so a crash between that change and
    # its commit is recognised at the next pass instead of being read as the user's doing.
    """
    ALTER TABLE drafts ADD COLUMN mailbox TEXT NOT NULL DEFAULT '';
    ALTER TABLE drafts ADD COLUMN intent TEXT
    """,
    # 4: a generation counter bumped by every change to what the planner reads, so an engine can tell
    # that nothing changed since its last evaluation (another process's writes included)
    """
    CREATE TABLE generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
    INSERT INTO generation VALUES (1, 0);
    """ + "".join(
        f"CREATE TRIGGER generation_{table}_{op.lower()} AFTER {op} ON {table}"
        " BEGIN UPDATE generation SET value = value + 1 WHERE id = 1; END;\n"
        for table in ("events", "drafts", "marks", "cases", "case_log")
        for op in ("INSERT", "UPDATE", "DELETE")
    ) + "CREATE TRIGGER generation_risks_insert AFTER INSERT ON risks"
    " BEGIN UPDATE generation SET value = value + 1 WHERE id = 1; END;\n",
    # 5: a version per account, bumped by every change to its stored events, so an engine keeps each
    # account's decoded and classified events and reads again only the accounts that changed. The
    # generation now counts what the planner is given (events, drafts, marks, the user's word on a
    # case), not what a pass writes down from its own evaluation (risks seen, cases brought up to date):
    # those follow from the evaluation itself, and counting them made every pass's bookkeeping look
    # like news to every other account's pass.
    """
    ALTER TABLE accounts ADD COLUMN events_version INTEGER NOT NULL DEFAULT 0;
    """ + "".join(f"DROP TRIGGER generation_{table}_{op};\n" for table in ("cases", "case_log")
                  for op in ("insert", "update", "delete"))
    + "DROP TRIGGER generation_risks_insert;\n" + "".join(
        f"CREATE TRIGGER events_version_{op.lower()} AFTER {op} ON events BEGIN"
        f" UPDATE accounts SET events_version = events_version + 1 WHERE name = {row}.account; END;\n"
        for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
    ),
    # 6: the last evaluation's plan, kept with the generation it reflects, so a new process whose
    # polls changed nothing acts on it instead of decoding, classifying and planning every account
    """
    CREATE TABLE plan (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, data TEXT NOT NULL);
    """,
)

LIVE_STATES = (DraftState.PENDING, DraftState.UNTOUCHED, DraftState.EDITED)


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration, whole (a trigger's body has semicolons of its own)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        out.append(pending.strip())
    return out


class StateError(Exception):
    """The state file cannot be used (unreadable, from a newer Salvage, corrupt)."""


@dataclass(frozen=True)
class DraftRecord:
    key: str
    account: str
    occurrence_key: str
    kind: ActionKind
    state: DraftState
    ref: DraftRef | None
    created: datetime
    updated: datetime
    event_start: datetime | None = None
    organizer_email: str | None = None
    series_key: str | None = None
    subject: str = ""
    recipients: str = ""
    note: str = ""
    slots: tuple[Slot, ...] = ()
    mailbox: str = ""  # the address the key was built from ('' for a key from before schema 3)
    intent: str | None = None  # JSON: a mailbox change begun but not yet committed (see begin_change)


@dataclass(frozen=True)
class CaseEntry:
    """One line of a case's history: when it entered a phase, and why."""

    occurrence_key: str
    at: datetime
    phase: Phase
    note: str


@dataclass(frozen=True)
class AccountStatus:
    name: str
    last_poll: datetime | None
    last_success: datetime | None
    next_poll: datetime | None
    error: str | None
    error_since: datetime | None
    failures: int
    needs_auth: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class RiskRecord:
    occurrence_key: str
    kind: str
    account: str
    severity: str
    evidence: str
    cause: str
    title: str
    event_start: datetime | None
    first_seen: datetime
    last_seen: datetime


def _t(value: datetime | None) -> str | None:
    return instant_to_text(value) if value is not None else None


def _p(text: str | None) -> datetime | None:
    return instant_from_text(text) if text else None


def _ref_out(ref: DraftRef | None) -> str | None:
    if ref is None:
        return None
    return json.dumps(
        {
            "id": ref.id,
            "fingerprint": ref.fingerprint,
            "thread_id": ref.thread_id,
            "created": _t(ref.created),
            "extra": ref.extra,
        }
    )


def _ref_in(text: str | None) -> DraftRef | None:
    if not text:
        return None
    d = json.loads(text)
    return DraftRef(
        id=d["id"],
        fingerprint=d["fingerprint"],
        thread_id=d.get("thread_id"),
        created=_p(d.get("created")),
        extra=d.get("extra") or {},
    )


def _slots_out(slots: tuple[Slot, ...]) -> str:
    return json.dumps([[instant_to_text(s.start), instant_to_text(s.end)] for s in slots])


def _slots_in(text: str | None) -> tuple[Slot, ...]:
    return tuple(Slot(instant_from_text(a), instant_from_text(b)) for a, b in json.loads(text or "[]"))


def _read_invitations(db: sqlite3.Connection, account: str) -> dict[str, Event]:
    """The account's stored events that carry invitation facts, by source id."""
    rows = db.execute("SELECT source_id, data FROM events WHERE account=? AND data LIKE ?",
                      (account, '%"invitation":{%'))
    return {row["source_id"]: event_from_json(row["data"]) for row in rows}


def _bounds(event: Event) -> tuple[str, str]:
    """UTC bounds for window queries; all-day dates are widened by a day to cover every zone."""
    if isinstance(event.start, datetime) and isinstance(event.end, datetime):
        return instant_to_text(event.start), instant_to_text(event.end)
    assert isinstance(event.start, date) and isinstance(event.end, date)
    start = datetime.combine(event.start, datetime.min.time(), tzinfo=timezone.utc) - timedelta(days=1)
    end = datetime.combine(event.end, datetime.min.time(), tzinfo=timezone.utc) + timedelta(days=1)
    return instant_to_text(start), instant_to_text(end)


def _bump_generation(db: sqlite3.Connection) -> None:
    """Say that the planner's input changed where no trigger sees it (the user's word on a case)."""
    db.execute("UPDATE generation SET value = value + 1 WHERE id = 1")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return "it is a directory, not a file"
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return "a part of the folder it is in is a file, not a folder"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def state_path_problem(path: Path) -> str | None:
    """Why the state file could not be opened at ``path`` (checked without creating anything); None if fine."""
    if path.is_dir():
        return f"{path} is a directory; state.path must name a file"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, so {path} cannot be created"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by you"
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot create {path}: {folder} is not writable by you"
    return None


class StateStore:
    """Salvage's memory. Open with :meth:`open`; use as a context manager to close."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self._db = conn
        self.path = path
        self._lock = threading.RLock()  # one connection, one writer: calls from threads take turns

    @classmethod
    def open(cls, path: Path | str, *, check_same_thread: bool = True) -> StateStore:
        """Open (creating and migrating as needed) the state file at ``path`` (or ``:memory:``).

        ``check_same_thread=False`` lets one other thread use the connection (the service's single
        worker); the caller must make sure two threads never use it at the same time.
        """
        target = None if str(path) == ":memory:" else Path(path)
        try:
            if target is not None:
                # Private whoever made the directory and whatever the umask: SQLite gives the -wal
                # and -shm files the database's own mode, so 0600 here makes all three 0600.
                private_dir(target.parent)
                private_file(target)
            conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None,
                                   check_same_thread=check_same_thread)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            if target is not None:
                for suffix in ("-wal", "-shm"):  # left 0644 by an older Salvage
                    side = target.with_name(target.name + suffix)
                    if side.exists():
                        private_file(side)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(conn, target)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot open state file {path}: {exc}") from None
        except OSError as exc:
            raise StateError(f"cannot open state file {path}: {_os_reason(exc)} (check state.path)") from None
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StateError(
                f"state file {self.path} was written by a newer Salvage (schema {version}); upgrade Salvage"
            )
        for number in range(version, len(MIGRATIONS)):
            with self._tx() as db:
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number + 1}")

    def generation(self) -> int:
        """A number that changes whenever anything the planner reads changes (in any process)."""
        return int(self._db.execute("SELECT value FROM generation WHERE id = 1").fetchone()[0])

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # ---- accounts -------------------------------------------------------------------------------

    def _ensure_account(self, db: sqlite3.Connection, name: str) -> None:
        db.execute("INSERT OR IGNORE INTO accounts (name) VALUES (?)", (name,))

    def cursor(self, account: str) -> str | None:
        row = self._db.execute("SELECT cursor FROM accounts WHERE name=?", (account,)).fetchone()
        return row["cursor"] if row else None

    def apply_fetch(self, account: str, result: FetchResult, now: datetime) -> int:
        """Store a poll's result (full replacement or delta) and the new cursor, atomically.

        Returns the number of events added, changed or removed.
        """
        seen = instant_to_text(now)
        with self._tx() as db:
            self._ensure_account(db, account)
            changed = 0
            if not result.unchanged:
                read = _read_invitations(db, account) if result.events else {}
                # Only what differs is written: an answer that repeats the stored calendar changes
                # nothing, so the planner's generation and the account's version stay as they are.
                stored = {r["source_id"]: r["data"] for r in
                          db.execute("SELECT source_id, data FROM events WHERE account=?", (account,))}
                if result.complete:
                    kept = {event.source_id for event in result.events}
                    gone = [source_id for source_id in stored if source_id not in kept]
                else:
                    gone = [source_id for source_id in result.removed if source_id in stored]
                for source_id in gone:
                    db.execute("DELETE FROM events WHERE account=? AND source_id=?", (account, source_id))
                    stored.pop(source_id, None)
                    changed += 1
                for event in result.events:
                    known = read.get(event.source_id)
                    if known is not None and event.invitation is None and replace(known, invitation=None) == event:
                        event = known  # the same version of the event: what its invitation said still holds
                    data = event_to_json(event)
                    if stored.get(event.source_id) == data:
                        continue
                    stored[event.source_id] = data
                    start, end = _bounds(event)
                    db.execute(
                        "INSERT OR REPLACE INTO events VALUES (?,?,?,?,?,?,?)",
                        (account, event.source_id, event.occurrence_key, start, end, data, seen),
                    )
                    changed += 1
            db.execute(
                "UPDATE accounts SET cursor=?, last_poll=?, last_success=?, error=NULL, error_since=NULL,"
                " failures=0, needs_auth=0, problems=? WHERE name=?",
                (result.cursor, seen, seen, json.dumps(list(result.problems)), account),
            )
        return changed

    def set_invitation(self, account: str, source_id: str, facts: InvitationFacts) -> None:
        """Keep what an event's invitation email says with the stored event, until the event changes."""
        with self._tx() as db:
            row = db.execute("SELECT data FROM events WHERE account=? AND source_id=?", (account, source_id)).fetchone()
            if row is None:
                return
            event = replace(event_from_json(row["data"]), invitation=facts)
            db.execute("UPDATE events SET data=? WHERE account=? AND source_id=?",
                       (event_to_json(event), account, source_id))

    def record_failure(self, account: str, now: datetime, message: str, *, needs_auth: bool = False) -> bool:
        """Remember that an account's poll failed. Returns True when it had been healthy until now."""
        with self._tx() as db:
            self._ensure_account(db, account)
            row = db.execute("SELECT error FROM accounts WHERE name=?", (account,)).fetchone()
            was_healthy = row["error"] is None
            db.execute(
                "UPDATE accounts SET last_poll=?, error=?, error_since=COALESCE(error_since, ?),"
                " failures=failures+1, needs_auth=? WHERE name=?",
                (_t(now), message, _t(now), int(needs_auth), account),
            )
        return was_healthy

    def set_next_poll(self, account: str, when: datetime | None) -> None:
        with self._tx() as db:
            self._ensure_account(db, account)
            db.execute("UPDATE accounts SET next_poll=? WHERE name=?", (_t(when), account))

    def account_status(self, account: str) -> AccountStatus | None:
        row = self._db.execute("SELECT * FROM accounts WHERE name=?", (account,)).fetchone()
        return self._status(row) if row else None

    def accounts(self) -> list[AccountStatus]:
        rows = self._db.execute("SELECT * FROM accounts ORDER BY name").fetchall()
        return [self._status(r) for r in rows]

    @staticmethod
    def _status(row: sqlite3.Row) -> AccountStatus:
        return AccountStatus(
            name=row["name"],
            last_poll=_p(row["last_poll"]),
            last_success=_p(row["last_success"]),
            next_poll=_p(row["next_poll"]),
            error=row["error"],
            error_since=_p(row["error_since"]),
            failures=row["failures"],
            needs_auth=bool(row["needs_auth"]),
            problems=tuple(json.loads(row["problems"] or "[]")),
        )

    # ---- events ---------------------------------------------------------------------------------

    def events(self, accounts: Iterable[str] | None = None, *, start: datetime | None = None,
               end: datetime | None = None) -> list[Event]:
        """Stored events, optionally of some accounts and overlapping [start, end)."""
        sql = "SELECT data FROM events WHERE 1=1"
        args: list[str] = []
        if accounts is not None:
            names = list(accounts)
            sql += f" AND account IN ({','.join('?' * len(names))})"
            args.extend(names)
        if start is not None:
            sql += " AND end_utc > ?"
            args.append(instant_to_text(start))
        if end is not None:
            sql += " AND start_utc < ?"
            args.append(instant_to_text(end))
        sql += " ORDER BY start_utc, account, source_id"
        out = []
        for row in self._db.execute(sql, args):
            out.append(event_from_json(row["data"]))
        return out

    def event_versions(self) -> dict[str, int]:
        """Each account's events version: it changes whenever any of the account's stored events does."""
        return {r["name"]: int(r["events_version"])
                for r in self._db.execute("SELECT name, events_version FROM accounts")}

    def account_events(self, account: str) -> tuple[int, list[tuple[str, str, Event]]]:
        """An account's events version and every stored event of it, with its UTC bounds as stored
        (text that sorts as time; see :meth:`events` for the window they are compared with)."""
        row = self._db.execute("SELECT events_version FROM accounts WHERE name=?", (account,)).fetchone()
        rows = self._db.execute("SELECT start_utc, end_utc, data FROM events WHERE account=?"
                                " ORDER BY start_utc, source_id", (account,)).fetchall()
        return (int(row[0]) if row else 0), [(r[0], r[1], event_from_json(r[2])) for r in rows]

    # ---- drafts ---------------------------------------------------------------------------------

    def draft(self, key: str) -> DraftRecord | None:
        row = self._db.execute("SELECT * FROM drafts WHERE key=?", (key,)).fetchone()
        return self._draft(row) if row else None

    def drafts(self, *, states: Iterable[DraftState] | None = None, account: str | None = None) -> list[DraftRecord]:
        sql = "SELECT * FROM drafts WHERE 1=1"
        args: list[str] = []
        if states is not None:
            values = [s.value for s in states]
            sql += f" AND state IN ({','.join('?' * len(values))})"
            args.extend(values)
        if account is not None:
            sql += " AND account=?"
            args.append(account)
        sql += " ORDER BY created, key"
        return [self._draft(r) for r in self._db.execute(sql, args)]

    @staticmethod
    def _draft(row: sqlite3.Row) -> DraftRecord:
        return DraftRecord(
            key=row["key"],
            account=row["account"],
            occurrence_key=row["occurrence_key"],
            kind=ActionKind(row["kind"]),
            state=DraftState(row["state"]),
            ref=_ref_in(row["ref"]),
            created=instant_from_text(row["created"]),
            updated=instant_from_text(row["updated"]),
            event_start=_p(row["event_start"]),
            organizer_email=row["organizer_email"],
            series_key=row["series_key"],
            subject=row["subject"],
            recipients=row["recipients"],
            note=row["note"],
            slots=_slots_in(row["slots"]),
            mailbox=row["mailbox"],
            intent=row["intent"],
        )

    def record_intent(self, record: DraftRecord) -> None:
        """Write down that a draft is about to be created (state PENDING) before talking to the mailbox."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO drafts (key, account, occurrence_key, kind, state, ref, created, updated,"
                " event_start, organizer_email, series_key, subject, recipients, note, slots, mailbox, intent)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)",
                (
                    record.key,
                    record.account,
                    record.occurrence_key,
                    record.kind.value,
                    DraftState.PENDING.value,
                    _ref_out(record.ref),
                    _t(record.created),
                    _t(record.updated),
                    _t(record.event_start),
                    record.organizer_email,
                    record.series_key,
                    record.subject,
                    record.recipients,
                    record.note,
                    _slots_out(record.slots),
                    record.mailbox,
                ),
            )

    def begin_change(self, key: str, intent: str) -> None:
        """Write down a change about to be made to a draft in its mailbox (committed before making it).

        The next :meth:`update_draft` clears it: the change and its outcome are then both recorded.
        """
        with self._tx() as db:
            db.execute("UPDATE drafts SET intent=? WHERE key=?", (intent, key))

    def adopt_mailboxes(self, mailboxes: dict[str, str]) -> int:
        """Re-key drafts from account-name keys to mailbox keys; follow renamed accounts by mailbox.

        ``mailboxes`` maps each configured account to its mailbox address. A draft whose key was built
        from an account's name (before schema 3) gets the key built from that account's mailbox; a draft of
        an account no longer configured moves to the one configured account with the same mailbox.
        Returns how many drafts changed. Idempotent.
        """
        by_mailbox: dict[str, list[str]] = {}
        for account, address in mailboxes.items():
            by_mailbox.setdefault(address, []).append(account)
        changed = 0
        with self._tx() as db:
            for row in db.execute("SELECT key, account, occurrence_key, kind, mailbox FROM drafts").fetchall():
                account, mailbox = row["account"], row["mailbox"]
                if not mailbox:
                    if account not in mailboxes:
                        continue  # its mailbox is unknown until the account is configured again
                    mailbox = mailboxes[account]
                    kind = ActionKind(row["kind"])
                    if row["key"] != draft_key(account, row["occurrence_key"], kind):
                        continue  # not a key this code wrote; leave it
                    new = draft_key(mailbox, row["occurrence_key"], kind)
                    if new != row["key"] and db.execute("SELECT 1 FROM drafts WHERE key=?", (new,)).fetchone():
                        continue
                    db.execute("UPDATE drafts SET key=?, mailbox=? WHERE key=?", (new, mailbox, row["key"]))
                    changed += 1
                elif account not in mailboxes and len(by_mailbox.get(mailbox, ())) == 1:
                    db.execute("UPDATE drafts SET account=? WHERE key=?", (by_mailbox[mailbox][0], row["key"]))
                    changed += 1
        return changed

    def update_draft(
        self,
        key: str,
        state: DraftState,
        now: datetime,
        *,
        ref: DraftRef | None = None,
        event_start: datetime | None = None,
        subject: str | None = None,
        note: str | None = None,
        slots: tuple[Slot, ...] | None = None,
    ) -> None:
        """Change a draft's state (and optionally its ref, event start, subject, note, offered slots).

        It also ends any change begun with :meth:`begin_change`: the change and its outcome are recorded.
        """
        sets = ["state=?", "updated=?", "intent=NULL"]
        args: list[object] = [state.value, _t(now)]
        if ref is not None:
            sets.append("ref=?")
            args.append(_ref_out(ref))
        if event_start is not None:
            sets.append("event_start=?")
            args.append(_t(event_start))
        if subject is not None:
            sets.append("subject=?")
            args.append(subject)
        if note is not None:
            sets.append("note=?")
            args.append(note)
        if slots is not None:
            sets.append("slots=?")
            args.append(_slots_out(slots))
        args.append(key)
        with self._tx() as db:
            db.execute(f"UPDATE drafts SET {', '.join(sets)} WHERE key=?", args)

    # ---- marks (user declarations) --------------------------------------------------------------

    def mark_missed(self, occurrence_key: str, now: datetime, reason: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO marks (occurrence_key, missed_at, reason) VALUES (?,?,?)"
                " ON CONFLICT(occurrence_key) DO UPDATE SET missed_at=COALESCE(missed_at, excluded.missed_at),"
                " reason=COALESCE(excluded.reason, reason)",
                (occurrence_key, _t(now), reason),
            )

    # ---- risks history (for the report) ---------------------------------------------------------

    def record_risks(self, risks: Iterable[Risk], events: dict[str, Event], now: datetime) -> None:
        """Remember risks seen now (first and last time seen) for `salvage report`."""
        stamp = _t(now)
        with self._tx() as db:
            for risk in risks:
                event = events.get(risk.occurrence_key)
                title = event.title if event else ""
                account = event.account if event else ""
                start = event.start if event and isinstance(event.start, datetime) else None
                db.execute(
                    "INSERT INTO risks VALUES (?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT(occurrence_key, kind) DO UPDATE SET severity=excluded.severity,"
                    " evidence=excluded.evidence, cause=excluded.cause, title=excluded.title,"
                    " event_start=excluded.event_start, last_seen=excluded.last_seen",
                    (
                        risk.occurrence_key,
                        risk.kind.value,
                        account,
                        risk.severity.value,
                        risk.evidence,
                        risk.cause,
                        title,
                        _t(start),
                        stamp,
                        stamp,
                    ),
                )

    def risk_history(self) -> list[RiskRecord]:
        rows = self._db.execute("SELECT * FROM risks ORDER BY event_start, occurrence_key, kind").fetchall()
        return [
            RiskRecord(
                occurrence_key=r["occurrence_key"],
                kind=r["kind"],
                account=r["account"],
                severity=r["severity"],
                evidence=r["evidence"],
                cause=r["cause"],
                title=r["title"],
                event_start=_p(r["event_start"]),
                first_seen=instant_from_text(r["first_seen"]),
                last_seen=instant_from_text(r["last_seen"]),
            )
            for r in rows
        ]

    # ---- the last plan -------------------------------------------------------------------------

    def save_plan(self, generation: int, data: str) -> None:
        """Keep the last evaluation's plan (see daemon.engine.snapshot) and the generation it reflects."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO plan VALUES (1, ?, ?)", (generation, data))

    def load_plan(self) -> tuple[int, str] | None:
        """The plan kept by :meth:`save_plan` and its generation; None when there is none."""
        row = self._db.execute("SELECT generation, data FROM plan WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    # ---- the planner's view of the past ---------------------------------------------------------

    def plan_context(self) -> PlanContext:
        prior = tuple(
            PriorDraft(
                occurrence_key=d.occurrence_key,
                kind=d.kind,
                state=d.state,
                created=d.created,
                event_start=d.event_start,
                organizer_email=d.organizer_email,
                series_key=d.series_key,
                slots=d.slots,
                updated=d.updated,
            )
            for d in self.drafts()
        )
        marked: set[str] = set()
        reasons: dict[str, str] = {}
        missed_at: dict[str, datetime] = {}
        for row in self._db.execute("SELECT * FROM marks"):
            if row["missed_at"]:
                marked.add(row["occurrence_key"])
                missed_at[row["occurrence_key"]] = instant_from_text(row["missed_at"])
            if row["reason"]:
                reasons[row["occurrence_key"]] = row["reason"]
        for row in self._db.execute("SELECT occurrence_key, first_seen FROM risks WHERE kind='missed'"):
            missed_at.setdefault(row["occurrence_key"], instant_from_text(row["first_seen"]))
        return PlanContext(prior=prior, marked_missed=frozenset(marked), reasons=reasons, missed_at=missed_at,
                           cases=tuple(self.cases()))

    # ---- cases ----------------------------------------------------------------------------------

    def cases(self, *, open_only: bool = False, since: datetime | None = None) -> list[Case]:
        """Stored cases (optionally only open ones, or with the interview starting at or after ``since``)."""
        sql = "SELECT * FROM cases WHERE 1=1"
        args: list[str] = []
        if open_only:
            sql += " AND phase != ?"
            args.append(Phase.CLOSED.value)
        if since is not None:
            sql += " AND event_start >= ?"
            args.append(instant_to_text(since))
        sql += " ORDER BY event_start, occurrence_key"
        marks = {r["occurrence_key"]: r for r in self._db.execute("SELECT * FROM marks")}
        return [self._case(r, marks.get(r["occurrence_key"])) for r in self._db.execute(sql, args)]

    def case(self, occurrence_key: str) -> Case | None:
        row = self._db.execute("SELECT * FROM cases WHERE occurrence_key=?", (occurrence_key,)).fetchone()
        if row is None:
            return None
        mark = self._db.execute("SELECT * FROM marks WHERE occurrence_key=?", (occurrence_key,)).fetchone()
        return self._case(row, mark)

    @staticmethod
    def _case(row: sqlite3.Row, mark: sqlite3.Row | None) -> Case:
        return Case(
            key=row["occurrence_key"],
            account=row["account"],
            event=event_from_json(row["event"]),
            opened=instant_from_text(row["opened"]),
            seen=instant_from_text(row["seen"]),
            phase=Phase(row["phase"]),
            booked_start=_p(row["booked_start"]),
            requested_at=_p(row["requested_at"]),
            missed_at=_p(row["missed_at"]),
            rebooked_key=row["rebooked_key"],
            rebooked_start=_p(row["rebooked_start"]),
            rebooks=row["rebooks"],
            closed_at=_p(row["closed_at"]),
            close_reason=row["close_reason"],
            gone=bool(row["gone"]),
            user_missed=bool(mark is not None and mark["missed_at"]),
            reason=mark["reason"] if mark is not None else None,
        )

    def save_cases(self, cases: Iterable[Case], now: datetime, notes: dict[str, str] | None = None) -> int:
        """Store cases as brought up to date by the core; a phase change is logged. Returns the changes."""
        notes = notes or {}
        changed = 0
        with self._tx() as db:
            for case in cases:
                row = db.execute("SELECT phase FROM cases WHERE occurrence_key=?", (case.key,)).fetchone()
                if row is not None and row["phase"] == Phase.CLOSED.value and case.phase is Phase.CLOSED:
                    continue  # a closed case's story is over: keep it as it was closed
                start = case.event.span(timezone.utc)[0] if case.event.all_day else case.event.start
                assert isinstance(start, datetime)
                db.execute(
                    "INSERT OR REPLACE INTO cases (occurrence_key, account, phase, event, event_start, opened, seen,"
                    " booked_start, requested_at, missed_at, rebooked_key, rebooked_start, rebooks, closed_at,"
                    " close_reason, gone) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (case.key, case.account, case.phase.value, event_to_json(case.event), instant_to_text(start),
                     _t(case.opened), _t(case.seen), _t(case.booked_start), _t(case.requested_at),
                     _t(case.missed_at), case.rebooked_key, _t(case.rebooked_start), case.rebooks,
                     _t(case.closed_at), case.close_reason, int(case.gone)),
                )
                if row is None or row["phase"] != case.phase.value:
                    changed += 1
                    note = case.close_reason if case.phase is Phase.CLOSED else notes.get(case.key, "")
                    db.execute("INSERT INTO case_log VALUES (?,?,?,?)", (case.key, _t(now), case.phase.value, note))
        return changed

    def close_case(self, occurrence_key: str, now: datetime, reason: str) -> bool:
        """Close a case on the user's word (`salvage done`). False when there is no such case."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE cases SET phase=?, closed_at=?, close_reason=? WHERE occurrence_key=?",
                (Phase.CLOSED.value, _t(now), reason, occurrence_key),
            )
            if cur.rowcount:
                db.execute("INSERT INTO case_log VALUES (?,?,?,?)",
                           (occurrence_key, _t(now), Phase.CLOSED.value, reason))
                _bump_generation(db)
        return bool(cur.rowcount)

    def reopen_case(self, occurrence_key: str, now: datetime, note: str) -> None:
        """Reopen a closed case (the user says it was missed after all); the next pass sets its phase."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE cases SET phase=?, closed_at=NULL, close_reason='' WHERE occurrence_key=? AND phase=?",
                (Phase.SCHEDULED.value, occurrence_key, Phase.CLOSED.value),
            )
            if cur.rowcount:
                _bump_generation(db)
                db.execute("INSERT INTO case_log VALUES (?,?,?,?)",
                           (occurrence_key, _t(now), Phase.SCHEDULED.value, note))

    def case_history(self, occurrence_key: str) -> list[CaseEntry]:
        rows = self._db.execute("SELECT * FROM case_log WHERE occurrence_key=? ORDER BY at, rowid",
                                (occurrence_key,)).fetchall()
        return [CaseEntry(r["occurrence_key"], instant_from_text(r["at"]), Phase(r["phase"]), r["note"]) for r in rows]


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(method)
    def call(self: StateStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return call


# Every public method of the store runs under its lock, those added later included: the service's
# passes run in several threads and share the one connection (a transaction of one thread must never
# take in another thread's statements).
for _name, _member in list(vars(StateStore).items()):
    if not _name.startswith("_") and callable(_member):
        setattr(StateStore, _name, _serialised(_member))
