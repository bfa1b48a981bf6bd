"""A draft's fate only from positive evidence, and lost or replaced state never duplicates a draft."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from memory_providers import MemoryCalendar

from daemon.config import Config, parse_config
from daemon.core.model import DraftState, Event, Response, person
from daemon.engine.pipeline import Engine
from daemon.engine.state import StateStore
from providers.folder import FolderDrafts

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TOMORROW_2PM = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)

CONFIG = """
user: {{name: Alex Morgan, email: alex@example.com, timezone: Europe/London}}
accounts:
  - name: {name}
    email: alex.work@example.com
    calendar: {{type: ics, path: work.ics}}
    drafts: {{type: folder, path: drafts}}
state: {{path: {state}}}
"""


def clash(account: str) -> list[Event]:
    """An interview tomorrow at 2 pm double-booked with a meeting: one reschedule draft."""
    iv = Event(account=account, source_id="iv1", ical_uid="iv1", title="Technical interview - Acme Robotics",
               start=TOMORROW_2PM, end=TOMORROW_2PM + timedelta(hours=1),
               organizer=person("jordan@acme-robotics.example", "Jordan Lee"),
               attendees=(person("alex@example.com", "Alex", Response.ACCEPTED, is_self=True),),
               join_urls=("https://acme.zoom.us/j/123",), description="Scheduled via Greenhouse")
    meeting = Event(account=account, source_id="m1", ical_uid="m1", title="Quarterly planning",
                    start=TOMORROW_2PM, end=TOMORROW_2PM + timedelta(minutes=90))
    return [iv, meeting]


class World:
    """One account whose drafts go to a real drafts folder; the state file can be lost or replaced."""

    def __init__(self, tmp: Path, name: str = "work", state: str = "state.sqlite3") -> None:
        self.tmp = tmp
        self.drafts = tmp / "drafts"
        self.calendar = MemoryCalendar()
        self.open(name, state)

    def open(self, name: str, state: str = "state.sqlite3") -> None:
        self.config: Config = parse_config(CONFIG.format(name=name, state=state), self.tmp / "config.yaml")
        self.calendar.events = clash(name)
        self.store = StateStore.open(self.config.state_path)
        self.folder = FolderDrafts(self.drafts, now=lambda: NOW)
        self.engine = Engine(self.config, self.store, open_calendar=lambda a, c: self.calendar,
                             open_drafts=lambda a, c: self.folder)

    def run(self, now: datetime = NOW) -> list[str]:
        return [f"{o.result}:{o.kind}" for o in self.engine.run_once(now).outcomes if o.result != "kept"]

    def files(self) -> list[str]:
        return sorted(p.name for p in self.drafts.glob("*.eml"))


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# ---- item 4: a fate only from positive evidence --------------------------------------------------


def test_a_vanished_drafts_folder_is_an_error_for_that_pass_not_a_deletion(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    assert world.run() == ["created:reschedule_request"]
    aside = world.tmp / "unmounted"
    os.replace(world.drafts, aside)
    caplog.set_level(logging.DEBUG, logger="salvage")
    for _ in range(3):
        assert world.run() == ["failed:reschedule_request"]
    (record,) = world.store.drafts()
    assert record.state is DraftState.UNTOUCHED
    status = world.store.account_status("work")
    assert status is not None and status.error is not None and "drafts folder" in status.error
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "drafts folder" in r.getMessage()]
    assert len(warnings) == 1  # logged once, shown in status at every pass
    os.replace(aside, world.drafts)
    assert world.run() == []  # kept: it was never gone
    assert world.store.drafts()[0].state is DraftState.UNTOUCHED
    status = world.store.account_status("work")
    assert status is not None and status.error is None
    (world.drafts / world.files()[0]).unlink()  # now the user really deletes it
    assert world.run() == ["deleted:reschedule_request"]
    assert world.run() == []  # never re-created
    assert world.files() == []


# ---- item 5: lost or replaced state never duplicates ----------------------------------------------


def _lose(path: Path, how: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.unlink()
    if how == "truncated":
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["deleted", "truncated", "new state.path"])
def test_a_lost_or_replaced_state_finds_the_live_draft_instead_of_making_another(tmp_path: Path, how: str) -> None:
    world = World(tmp_path)
    assert world.run() == ["created:reschedule_request"]
    made = world.files()
    world.store.close()
    if how == "new state.path":
        world.open("work", state="elsewhere/state.sqlite3")
    else:
        _lose(world.config.state_path, how)
        world.open("work")
    assert world.run() == []  # found by its X-Salvage-Key: kept, not created again
    assert world.files() == made
    (record,) = world.store.drafts()
    assert record.state is DraftState.UNTOUCHED and record.ref is not None and record.ref.id == made[0]
    world.calendar.events = [e for e in world.calendar.events if e.title != "Quarterly planning"]
    assert world.run() == ["withdrawn:reschedule_request"]  # and it is fully tracked again
    assert world.files() == []


def test_a_found_draft_with_other_words_is_left_to_the_user(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.run()
    (path,) = world.drafts.glob("*.eml")
    path.write_bytes(path.read_bytes().replace(b"Jordan", b"Dear Jordan (my words)"))
    world.store.close()
    _lose(world.config.state_path, "deleted")
    world.open("work")
    for _ in range(2):
        assert world.run() == ["edited:reschedule_request"]  # never overwritten
    assert len(world.files()) == 1 and b"my words" in path.read_bytes()
    assert world.store.drafts()[0].state is DraftState.EDITED


def test_renaming_an_account_keeps_its_drafts(tmp_path: Path) -> None:
    world = World(tmp_path, name="work")
    assert world.run() == ["created:reschedule_request"]
    made = world.files()
    world.store.close()
    world.open("job")  # the same mailbox under a new name
    assert world.run() == []
    assert world.files() == made
    (record,) = world.store.drafts()
    assert record.account == "job" and record.state is DraftState.UNTOUCHED
    world.calendar.events = [e for e in world.calendar.events if e.title != "Quarterly planning"]
    assert world.run() == ["withdrawn:reschedule_request"]


def test_schema_1_drafts_keyed_by_account_name_are_re_keyed_by_mailbox(tmp_path: Path) -> None:
    from daemon.core.model import ActionKind, draft_key

    world = World(tmp_path)
    assert world.run() == ["created:reschedule_request"]
    (record,) = world.store.drafts()
    old = draft_key("work", record.occurrence_key, ActionKind.RESCHEDULE)
    assert record.key == draft_key("alex.work@example.com", record.occurrence_key, ActionKind.RESCHEDULE) != old
    world.store.close()
    import sqlite3

    db = sqlite3.connect(world.config.state_path)  # as a schema-1 Salvage left it
    db.execute("UPDATE drafts SET key=?, mailbox=''", (old,))
    db.commit()
    db.close()
    world.open("work")
    assert world.run() == []
    (record,) = world.store.drafts()
    assert record.key != old and record.mailbox == "alex.work@example.com" and record.state is DraftState.UNTOUCHED
    assert len(world.files()) == 1


class PowerCut(BaseException):
    """The process dies here (not an error the engine could catch)."""


def test_a_crash_between_withdrawing_and_saving_is_not_read_as_the_users_no(tmp_path: Path) -> None:
    world = World(tmp_path)
    assert world.run() == ["created:reschedule_request"]
    real_delete = world.folder.delete

    def delete_then_die(ref: object) -> None:
        real_delete(ref)  # type: ignore[arg-type]
        raise PowerCut

    world.folder.delete = delete_then_die  # type: ignore[method-assign]
    both = list(world.calendar.events)
    world.calendar.events = [e for e in both if e.title != "Quarterly planning"]
    with pytest.raises(PowerCut):
        world.run()
    assert world.files() == []
    world.store.close()
    world.open("work")
    world.calendar.events = [e for e in both if e.title != "Quarterly planning"]
    assert world.run() == ["withdrawn:reschedule_request"]
    assert world.store.drafts()[0].state is DraftState.WITHDRAWN  # ours, not "you deleted it"
    world.calendar.events = both  # the clash is back: the draft may be made again
    assert world.run() == ["created:reschedule_request"]
    assert len(world.files()) == 1


def test_a_crash_between_rewriting_and_saving_is_not_read_as_the_users_edit(tmp_path: Path) -> None:
    world = World(tmp_path)
    assert world.run() == ["created:reschedule_request"]
    real_update = world.folder.update

    def update_then_die(ref: object, draft: object) -> object:
        real_update(ref, draft)  # type: ignore[arg-type]
        raise PowerCut

    world.folder.update = update_then_die  # type: ignore[method-assign]
    moved = [replace(e, start=e.start + timedelta(hours=1), end=e.end + timedelta(hours=1))  # type: ignore[operator]
             for e in world.calendar.events]
    world.calendar.events = moved
    with pytest.raises(PowerCut):
        world.run()
    world.store.close()
    world.open("work")
    world.calendar.events = moved
    assert world.run() == []  # our rewrite landed: recognised as ours
    (record,) = world.store.drafts()
    assert record.state is DraftState.UNTOUCHED and record.intent is None
    again = [replace(e, start=e.start + timedelta(days=1), end=e.end + timedelta(days=1))  # type: ignore[operator]
             for e in moved]
    world.calendar.events = again
    assert world.run() == ["updated:reschedule_request"]  # still ours to keep up to date
    assert len(world.files()) == 1
