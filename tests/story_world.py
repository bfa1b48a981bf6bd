"""A calendar replayed over days with `--now`, a real mailbox (folder, Google fake, Graph fake), a user.

:class:`Story` writes the calendar as an .ics file before each step and runs one pass at the given
instant, either through the command line (`salvage run --once --now …`: a new Engine and StateStore
from the same files every time, i.e. a restart between any two steps) or through one Engine kept for
the whole story. The user's actions (send, edit, delete a draft) are played on the real mailbox.
:meth:`Story.snapshot` is what must not depend on restarts: drafts with their fates, subjects, texts
and offered slots; the mailbox's live drafts; every case with its phase.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from io import StringIO
from pathlib import Path
from typing import Any, Protocol

from daemon.cli.main import main
from daemon.config import Config, load_config
from daemon.core.model import ActionKind, Case, DraftState
from daemon.engine.pipeline import Engine
from daemon.engine.state import DraftRecord, StateStore
from providers.mime import KEY_HEADER, parse_message

UTC = timezone.utc
ME = "alex@example.com"
PHONE = "+44 20 7946 0321"
ACME = ("Jordan Lee", "jordan@acme-robotics.example")


def at(text: str) -> datetime:
    """'2026-11-24 10:12' in UTC (London keeps UTC in November)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    """One calendar entry as the .ics file says it."""

    uid: str
    title: str
    start: datetime
    minutes: int = 60
    organizer: tuple[str, str] | None = ACME
    interview: bool = True
    created: datetime | None = None
    sequence: int = 0
    cancelled: bool = False

    def moved(self, start: datetime) -> Entry:
        return replace(self, start=start, sequence=self.sequence + 1)


def interview(uid: str, start: datetime, company: str = "Acme Robotics", organizer: tuple[str, str] = ACME,
              **kw: Any) -> Entry:
    return Entry(uid, f"Technical interview - {company}", start, organizer=organizer, **kw)


def meeting(uid: str, start: datetime, minutes: int = 120) -> Entry:
    return Entry(uid, "Quarterly planning", start, minutes, organizer=("Chris Doyle", "chris@currentjob.example"),
                 interview=False)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_ics(path: Path, entries: list[Entry]) -> None:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Salvage story tests//EN"]
    for e in entries:
        lines += ["BEGIN:VEVENT", f"UID:{e.uid}", "DTSTAMP:20261101T000000Z", f"SEQUENCE:{e.sequence}",
                  f"DTSTART:{_stamp(e.start)}", f"DTEND:{_stamp(e.start + timedelta(minutes=e.minutes))}",
                  f"SUMMARY:{e.title}"]
        if e.created is not None:
            lines.append(f"CREATED:{_stamp(e.created)}")
        if e.cancelled:
            lines.append("STATUS:CANCELLED")
        if e.interview:
            lines += [f"DESCRIPTION:Scheduled via Greenhouse. If we get cut off\\, call me on {PHONE}.",
                      "LOCATION:https://acme.zoom.us/j/123456789"]
        if e.organizer is not None:
            name, email = e.organizer
            lines += [f"ORGANIZER;CN={name}:mailto:{email}", f"ATTENDEE;CN={name};PARTSTAT=ACCEPTED:mailto:{email}"]
        lines += [f"ATTENDEE;CN=Alex Morgan;PARTSTAT=ACCEPTED:mailto:{ME}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    os.replace(tmp, path)


# ---- mailboxes: the real draft stores, and the user's hands on them ------------------------------------


class Mailbox(Protocol):
    name: str

    def drafts_yaml(self, tmp: Path) -> str: ...
    def send(self, draft_id: str) -> None: ...
    def edit(self, draft_id: str, text: str) -> None: ...
    def delete(self, draft_id: str) -> None: ...
    def live(self) -> dict[str, str]: ...  # X-Salvage-Key -> text of each draft in the Drafts folder


class FolderMailbox:
    name = "folder"

    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "drafts"

    def drafts_yaml(self, tmp: Path) -> str:
        return f"    drafts: {{type: folder, path: {self.path}}}\n"

    def send(self, draft_id: str) -> None:
        (self.path / "sent").mkdir(exist_ok=True)
        os.replace(self.path / draft_id, self.path / "sent" / draft_id)

    def edit(self, draft_id: str, text: str) -> None:
        file = self.path / draft_id
        message = parse_message(file.read_bytes())
        message.set_content(text)
        file.write_bytes(message.as_bytes())

    def delete(self, draft_id: str) -> None:
        (self.path / draft_id).unlink()

    def live(self) -> dict[str, str]:
        out = {}
        for file in sorted(self.path.glob("*.eml")):
            message = parse_message(file.read_bytes())
            body = message.get_body(preferencelist=("plain",))
            out[str(message[KEY_HEADER])] = body.get_content() if body is not None else ""
        return dict(sorted(out.items()))


class GoogleMailbox:
    name = "google"

    def __init__(self, fake: Any, tmp: Path) -> None:
        self.fake = fake
        fake.add_client()
        fake.add_calendar(ME, "Me", primary=True)
        self.token = fake.token_file(tmp / "tokens" / "g.google.json")

    def drafts_yaml(self, tmp: Path) -> str:
        f = self.fake
        return ("    drafts: {type: google}\n    google:\n"
                f"      api_endpoint: {f.api_endpoint}\n      token_uri: {f.token_uri}\n"
                f"      auth_uri: {f.auth_uri}\n      token_file: {self.token}\n      timeout_seconds: 5\n")

    def send(self, draft_id: str) -> None:
        self.fake.user_send(draft_id)

    def edit(self, draft_id: str, text: str) -> None:
        self.fake.user_edit(draft_id, text)

    def delete(self, draft_id: str) -> None:
        self.fake.user_discard(draft_id)

    def live(self) -> dict[str, str]:
        out = {}
        for draft_id in sorted(self.fake.drafts):
            message = self.fake.draft_message(draft_id).parsed
            body = message.get_body(preferencelist=("plain",))
            out[str(message[KEY_HEADER])] = body.get_content() if body is not None else ""
        return dict(sorted(out.items()))


class GraphMailbox:
    name = "microsoft"

    def __init__(self, fake: Any, state: Path) -> None:
        self.fake = fake
        self.state = state

    def drafts_yaml(self, tmp: Path) -> str:
        section = self.fake.microsoft_section(self.state / "work.msal.json")
        return "    drafts: {type: microsoft}\n    microsoft: " + json.dumps(section) + "\n"

    def send(self, draft_id: str) -> None:
        self.fake.user_sends(draft_id)

    def edit(self, draft_id: str, text: str) -> None:
        self.fake.user_edits(draft_id, text)

    def delete(self, draft_id: str) -> None:
        self.fake.user_deletes(draft_id)

    def live(self) -> dict[str, str]:
        import html
        import re

        out = {}
        for message in self.fake.drafts():
            body = message.get("body", {})
            text = body.get("content", "")
            if body.get("contentType") == "html":
                text = html.unescape(re.sub(r"<[^>]+>", "", text))
            out[str(self.fake.draft_key(message))] = text
        return dict(sorted(out.items()))


# ---- the story ----------------------------------------------------------------------------------------


@dataclass
class Story:
    """One calendar, one account, one mailbox; ``restart`` runs every step as a fresh process would."""

    tmp: Path
    mailbox: Mailbox
    restart: bool
    entries: dict[str, Entry] = field(default_factory=dict)
    transcript: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ics = self.tmp / "calendar.ics"
        self.config_path = self.tmp / "config.yaml"
        self.state_path = self.tmp / "state.sqlite3"
        self.config_path.write_text(
            f"user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}\n"
            f"state: {{path: {self.state_path}}}\n"
            "notify: {desktop: false}\n"
            "accounts:\n  - name: work\n"
            f"    calendar: {{type: ics, path: {self.ics}}}\n" + self.mailbox.drafts_yaml(self.tmp),
            encoding="utf-8",
        )
        self.config: Config = load_config(self.config_path)
        write_ics(self.ics, [])
        self._engine: Engine | None = None
        self._store: StateStore | None = None
        self._last: dict[str, Any] = {"drafts": [], "cases": [], "live": {}}

    # -- the calendar (the organizer's side) --

    def put(self, *entries: Entry) -> None:
        for entry in entries:
            self.entries[entry.uid] = entry
        write_ics(self.ics, list(self.entries.values()))

    def remove(self, uid: str) -> None:
        self.entries.pop(uid)
        write_ics(self.ics, list(self.entries.values()))

    # -- passes --

    @contextmanager
    def store(self) -> Iterator[StateStore]:
        if self.restart or self._store is None:
            with StateStore.open(self.state_path) as store:
                yield store
        else:
            yield self._store

    def run(self, now: datetime) -> list[str]:
        """One pass at ``now``; what became of the drafts: created, updated, sent, edited, deleted, withdrawn."""
        if self.restart:
            code, printed = self._main("run", "--once", now=now)
            assert code == 0, printed
        else:
            if self._engine is None:
                self._store = StateStore.open(self.state_path)
                self._engine = Engine(self.config, self._store)
            report = self._engine.run_once(now)
            assert not report.failed_accounts, report.failed_accounts
        return self._changes(now)

    def _changes(self, now: datetime) -> list[str]:
        """The drafts' changes since the last pass, read from the state store and the mailbox."""
        snap = self.snapshot()
        before = {d[0]: d for d in self._last["drafts"]}
        live_before = self._last["live"]
        out = []
        for d in snap["drafts"]:
            old = before.get(d[0])
            if old is None or (old[3] == "withdrawn" and d[3] != "withdrawn"):
                out.append(f"created:{d[1]}")
            elif old[3] != d[3]:
                out.append(f"{d[3]}:{d[1]}")
            elif d[0] in snap["live"] and live_before.get(d[0]) not in (None, snap["live"][d[0]]) and d[3] == "untouched":
                out.append(f"updated:{d[1]}")
        self._last = snap
        self.transcript.append((now.isoformat(), snap))
        return sorted(out)

    def cli(self, *args: str, now: datetime) -> tuple[int, str]:
        """A `salvage` command the user runs, in process; its exit code and what it printed."""
        code, printed = self._main(*args, now=now)
        self._last = self.snapshot()  # what the command itself drafted is not news for the next pass
        self.transcript.append((f"{now.isoformat()} salvage {' '.join(args)}", (code, self._last)))
        return code, printed

    def _main(self, *args: str, now: datetime) -> tuple[int, str]:
        out = StringIO()
        with redirect_stdout(out):
            code = main([args[0], "--config", str(self.config_path), "--now", now.isoformat(), *args[1:]])
        return code, out.getvalue()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._store is not None:
            self._store.close()

    # -- what the user sees and does --

    def records(self, kind: ActionKind | None = None, uid: str | None = None) -> list[DraftRecord]:
        with self.store() as store:
            return [d for d in store.drafts() if (kind is None or d.kind is kind)
                    and (uid is None or d.occurrence_key == uid)]

    def draft(self, kind: ActionKind, uid: str) -> DraftRecord:
        (record,) = self.records(kind, uid)
        return record

    def text(self, kind: ActionKind, uid: str) -> str:
        return self.mailbox.live()[self.draft(kind, uid).key]

    def live_kinds(self) -> list[tuple[str, str]]:
        keys = set(self.mailbox.live())
        return sorted((d.kind.value, d.occurrence_key) for d in self.records() if d.key in keys)

    def send(self, kind: ActionKind, uid: str) -> None:
        record = self.draft(kind, uid)
        assert record.ref is not None and record.state is DraftState.UNTOUCHED
        self.mailbox.send(record.ref.id)
        self.transcript.append(("user sends", (kind.value, uid)))

    def edit(self, kind: ActionKind, uid: str, text: str) -> None:
        record = self.draft(kind, uid)
        assert record.ref is not None
        self.mailbox.edit(record.ref.id, text)
        self.transcript.append(("user edits", (kind.value, uid)))

    def delete(self, kind: ActionKind, uid: str) -> None:
        record = self.draft(kind, uid)
        assert record.ref is not None
        self.mailbox.delete(record.ref.id)
        self.transcript.append(("user deletes", (kind.value, uid)))

    def case(self, uid: str) -> Case:
        with self.store() as store:
            found = store.case(uid)
        assert found is not None, f"no case for {uid}"
        return found

    def snapshot(self) -> dict[str, Any]:
        with self.store() as store:
            drafts = [(d.key, d.kind.value, d.occurrence_key, d.state.value, d.subject,
                       tuple((s.start.isoformat(), s.end.isoformat()) for s in d.slots)) for d in store.drafts()]
            cases = [(c.key, c.phase.value, c.close_reason, c.rebooked_key,
                      c.missed_at.isoformat() if c.missed_at else None) for c in store.cases()]
        return {"drafts": drafts, "cases": cases, "live": self.mailbox.live()}
