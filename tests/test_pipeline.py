"""The pipeline shell over in-memory providers that implement the real protocols (fakes, not mocks)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from memory_providers import MemoryCalendar, MemoryMailbox

from daemon.config import AccountConfig, Config, parse_config
from daemon.core.model import ActionKind, DraftState, Event, Response, RiskKind, person
from daemon.engine.pipeline import Engine
from daemon.engine.state import StateStore
from providers.base import (
    AuthError,
    DraftMessage,
    DraftRef,
    FetchResult,
    InvitationEmail,
    ProviderError,
    ThreadInfo,
)

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday; London = UTC in November

CONFIG = """
user: {name: Alex Morgan, email: alex@example.com, timezone: Europe/London}
accounts:
  - name: work
    calendar: {type: ics, path: work.ics}
    drafts: {type: folder, path: out-work}
  - name: home
    calendar: {type: ics, path: home.ics}
    drafts: {type: folder, path: out-home}
"""


def interview(start: datetime, *, key: str = "iv1", account: str = "work", minutes: int = 60) -> Event:
    return Event(
        account=account,
        source_id=key,
        ical_uid=key,
        title="Technical interview - Acme Robotics",
        start=start,
        end=start + timedelta(minutes=minutes),
        organizer=person("jordan@acme-robotics.example", "Jordan Lee"),
        attendees=(person("alex@example.com", "Alex", Response.ACCEPTED, is_self=True),),
        join_urls=("https://acme.zoom.us/j/123",),
        description="Scheduled via Greenhouse",
    )


def meeting(start: datetime, *, key: str = "m1", account: str = "work", title: str = "Quarterly planning") -> Event:
    return Event(account=account, source_id=key, ical_uid=key, title=title, start=start,
                 end=start + timedelta(minutes=90))


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.config: Config = parse_config(CONFIG, tmp_path / "config.yaml")
        self.store = StateStore.open(tmp_path / "state.sqlite3")
        self.calendars = {"work": MemoryCalendar(), "home": MemoryCalendar()}
        self.mailboxes = {"work": MemoryMailbox(), "home": MemoryMailbox()}
        self.engine = Engine(
            self.config,
            self.store,
            open_calendar=lambda account, config: self.calendars[account.name],
            open_drafts=lambda account, config: self.mailboxes[account.name],
        )

    def run(self, now: datetime = NOW) -> list[str]:
        report = self.engine.run_once(now)
        return [f"{o.result}:{o.kind}" for o in report.outcomes if o.result != "kept"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


TOMORROW_2PM = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def test_double_booking_makes_one_draft_and_a_second_run_none(world: World) -> None:
    world.calendars["work"].events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM - timedelta(minutes=30))]
    assert world.run() == ["created:reschedule_request"]
    mailbox = world.mailboxes["work"]
    (draft,) = mailbox.drafts.values()
    assert [a.email for a in draft.to] == ["jordan@acme-robotics.example"]
    assert "Quarterly planning" not in draft.text and "Quarterly planning" not in draft.subject
    assert world.run() == []
    assert len(mailbox.drafts) == 1


def test_deleted_draft_is_never_recreated(world: World) -> None:
    world.calendars["work"].events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    world.run()
    world.mailboxes["work"].drafts.clear()
    assert world.run() == ["deleted:reschedule_request"]
    assert world.run() == []
    assert world.mailboxes["work"].drafts == {}
    (record,) = world.store.drafts()
    assert record.state is DraftState.DELETED


def test_moved_interview_updates_an_untouched_draft_but_not_an_edited_one(world: World) -> None:
    cal, mailbox = world.calendars["work"], world.mailboxes["work"]
    cal.events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    world.run()
    (draft_id,) = mailbox.drafts
    before = mailbox.bodies[draft_id]
    cal.events = [interview(TOMORROW_2PM + timedelta(minutes=30)), meeting(TOMORROW_2PM)]
    assert world.run() == ["updated:reschedule_request"]
    assert mailbox.bodies[draft_id] != before and len(mailbox.drafts) == 1
    mailbox.bodies[draft_id] = "Dear Jordan, my own words."
    cal.events = [interview(TOMORROW_2PM + timedelta(minutes=45)), meeting(TOMORROW_2PM)]
    assert world.run() == ["edited:reschedule_request"]
    assert mailbox.bodies[draft_id] == "Dear Jordan, my own words."


def test_clash_gone_withdraws_untouched_draft(world: World) -> None:
    cal, mailbox = world.calendars["work"], world.mailboxes["work"]
    cal.events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    world.run()
    cal.events = [interview(TOMORROW_2PM)]
    assert world.run() == ["withdrawn:reschedule_request"]
    assert mailbox.drafts == {}
    (record,) = world.store.drafts()
    assert record.state is DraftState.WITHDRAWN
    # the clash comes back: a new draft is allowed (it was withdrawn by us, not deleted by the user)
    cal.events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    assert world.run() == ["created:reschedule_request"]


def test_clash_gone_leaves_edited_draft(world: World) -> None:
    cal, mailbox = world.calendars["work"], world.mailboxes["work"]
    cal.events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    world.run()
    (draft_id,) = mailbox.drafts
    mailbox.bodies[draft_id] += "\nP.S. edited"
    cal.events = [interview(TOMORROW_2PM)]
    assert world.run() == ["edited:reschedule_request"]
    assert draft_id in mailbox.drafts


def test_sent_draft_is_done(world: World) -> None:
    cal, mailbox = world.calendars["work"], world.mailboxes["work"]
    cal.events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    world.run()
    mailbox.sent.update(mailbox.drafts)
    assert world.run() == ["sent:reschedule_request"]
    assert world.run() == []


def test_crash_between_create_and_save_never_duplicates(world: World) -> None:
    cal, mailbox = world.calendars["work"], world.mailboxes["work"]
    cal.events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    mailbox.crash_after_create = True
    assert world.run() == ["failed:reschedule_request"]
    (record,) = world.store.drafts()
    assert record.state is DraftState.PENDING
    world.run()
    assert len(mailbox.drafts) == 1
    (record,) = world.store.drafts()
    assert record.state is DraftState.UNTOUCHED


def test_failing_account_does_not_stop_the_other(world: World) -> None:
    world.calendars["work"].error = ProviderError("calendar server said 500")
    world.calendars["home"].events = [
        interview(TOMORROW_2PM, account="home", key="iv-home"),
        meeting(TOMORROW_2PM, account="home", key="m-home"),
    ]
    report = world.engine.run_once(NOW)
    assert [p.account for p in report.failed_accounts] == ["work"]
    assert len(world.mailboxes["home"].drafts) == 1
    status = world.store.account_status("work")
    assert status is not None and "500" in (status.error or "")


def test_auth_error_marks_account(world: World) -> None:
    world.calendars["work"].error = AuthError("token revoked")
    report = world.engine.run_once(NOW)
    assert report.failed_accounts[0].needs_auth
    status = world.store.account_status("work")
    assert status is not None and status.needs_auth


def test_same_invitation_on_two_calendars_is_one_interview(world: World) -> None:
    world.calendars["work"].events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    world.calendars["home"].events = [interview(TOMORROW_2PM, account="home")]
    world.run()
    evaluation = world.engine.evaluate(NOW)
    assert len(evaluation.interviews) == 1
    assert not any(r.kind.value == "interview_clash" for r in evaluation.risks)
    assert len(world.mailboxes["work"].drafts) + len(world.mailboxes["home"].drafts) == 1


def test_dry_run_touches_no_mailbox(world: World) -> None:
    world.calendars["work"].events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    report = world.engine.run_once(NOW, dry_run=True)
    assert [o.result for o in report.outcomes] == ["would-create"]
    assert world.mailboxes["work"].drafts == {}
    assert world.store.drafts() == []


def test_threaded_draft_keeps_reply_headers_on_update(world: World) -> None:
    cal, mailbox = world.calendars["work"], world.mailboxes["work"]
    mailbox.thread = ThreadInfo(thread_id="t1", message_id="<invite@acme>", subject="Invitation: Technical interview")
    cal.events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    world.run()
    (draft,) = mailbox.drafts.values()
    assert draft.in_reply_to == "<invite@acme>" and draft.subject.startswith("Re: ")
    cal.events = [interview(TOMORROW_2PM + timedelta(minutes=30)), meeting(TOMORROW_2PM)]
    world.run()
    (draft,) = mailbox.drafts.values()
    assert draft.in_reply_to == "<invite@acme>" and draft.thread_id == "t1"


def test_user_declared_miss_makes_missed_draft(world: World) -> None:
    start = NOW - timedelta(hours=1)
    world.calendars["work"].events = [interview(start)]
    world.run(NOW)
    world.store.mark_missed("iv1", NOW, "illness")
    result = world.run(NOW)
    assert result == ["created:missed_interview"]
    (draft,) = world.mailboxes["work"].drafts.values()
    assert draft.to[0].email == "jordan@acme-robotics.example"
    record = world.store.drafts()[0]
    assert record.kind is ActionKind.MISSED


def test_window_is_aware(world: World) -> None:
    window = world.engine.window(NOW)
    assert window.start.utcoffset() is not None and window.end - window.start == timedelta(days=31)


def test_unknown_account_in_config_lookup(world: World) -> None:
    from daemon.config import ConfigError

    with pytest.raises(ConfigError):
        world.config.account("nope")
    assert isinstance(world.config.account("work"), AccountConfig)


def test_a_malformed_event_is_warned_about_once_per_engine(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from providers.base import FetchResult

    class Broken:
        def fetch(self, window: object, cursor: object) -> FetchResult:
            return FetchResult(events=(), problems=("event 'x' has no start; skipped",), complete=True)

    config = parse_config(
        "user: {name: A, email: a@example.com, timezone: UTC}\n"
        "accounts: [{name: a, calendar: {type: ics, path: x.ics}, drafts: {type: folder, path: d}}]\n"
    )
    store = StateStore.open(":memory:")
    engine = Engine(config, store, open_calendar=lambda account, cfg: Broken())  # type: ignore[arg-type,return-value]
    now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    caplog.set_level(logging.DEBUG, logger="salvage")
    for _ in range(3):
        assert engine.poll(config.accounts[0], now).ok
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "no start" in r.getMessage()]
    assert len(warnings) == 1


def test_a_mailbox_refusing_us_after_good_polls_is_logged_once(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.calendars["work"].events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]

    def refuse(draft: DraftMessage) -> DraftRef:
        raise AuthError("mailbox token revoked")

    world.mailboxes["work"].create = refuse  # type: ignore[method-assign]
    caplog.set_level(logging.DEBUG, logger="salvage")
    for _ in range(3):
        assert world.run() == ["failed:reschedule_request"]
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING and "revoked" in r.getMessage()]
    assert len(errors) == 1
    status = world.store.account_status("work")
    assert status is not None and status.needs_auth


def test_the_invitation_email_adds_a_phone_and_reports_a_time_mismatch(world: World) -> None:
    mailbox = world.mailboxes["work"]
    mailbox.invitation = InvitationEmail(
        subject="Invitation: Technical interview - Acme Robotics",
        text="Hi Alex, confirming Thursday, November 26 at 9am ET. If the video fails, call Jordan on "
             "+1 646 555 0142.",
    )
    world.calendars["work"].events = [interview(TOMORROW_2PM)]  # 14:00 London; 9am ET is 14:00 UTC
    evaluation = world.engine.run_once(NOW).evaluation
    assert evaluation is not None
    (event,) = evaluation.interviews
    assert "+1 646 555 0142" in event.phones and event.invitation is not None
    assert [r.kind for r in evaluation.risks] == []  # 9am ET on 26 November is 14:00 UTC: they agree
    assert mailbox.invitation_reads == 1
    world.engine.run_once(NOW)
    assert mailbox.invitation_reads == 1  # once per version of the event

    mailbox.invitation = InvitationEmail(subject="Interview", text="See you Thursday, November 26 at 2pm ET.")
    world.calendars["work"].events = [replace(interview(TOMORROW_2PM), updated=NOW)]
    evaluation = world.engine.run_once(NOW).evaluation
    assert evaluation is not None
    (risk,) = evaluation.risks
    assert risk.kind is RiskKind.TIME_MISMATCH and "2pm ET" in risk.evidence
    assert world.mailboxes["work"].drafts == {}  # a risk to look at, not a draft


def test_a_failing_invitation_lookup_changes_nothing_else(world: World) -> None:
    def broken(event: Event) -> InvitationEmail | None:
        raise ProviderError("mailbox unavailable")

    world.mailboxes["work"].read_invitation = broken  # type: ignore[method-assign]
    world.calendars["work"].events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM)]
    assert world.run() == ["created:reschedule_request"]
