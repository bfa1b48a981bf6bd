"""Outlook drafts through Graph against the loopback HTTPS fake; and `salvage run --once` end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fakes.graph_fake import GraphFake, config_text, open_client, open_context, sign_in

from daemon.config import parse_config
from daemon.core.model import Event, Response, person
from providers.base import Address, DraftFate, DraftMessage, ProviderError
from providers.microsoft.mail import KEY_PROPERTY, GraphDrafts
from providers.mime import fingerprint
from providers.retry import RetryPolicy

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
JORDAN = ("Jordan Lee", "jordan@acme-robotics.example")
TITLE = "Technical interview - Acme Robotics"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GraphFake, Path]]:
    fake = GraphFake()
    state = tmp_path_factory.mktemp("ms-drafts")
    sign_in(fake, config_text(fake, state))
    yield fake, state
    fake.close()


@pytest.fixture
def fake(server: tuple[GraphFake, Path]) -> Iterator[GraphFake]:
    graph = server[0]
    graph.reset()
    yield graph
    assert graph.violations == []
    assert not any(r.path.endswith(("/send", "/sendMail")) for r in graph.requests)


class Box:
    def __init__(self, fake: GraphFake, state: Path, **microsoft: Any) -> None:
        config = parse_config(config_text(fake, state, **microsoft))
        self.sleeps: list[float] = []
        self.client = open_client(config, retry=RetryPolicy(attempts=4, base_seconds=0.01),
                                  sleep=self.sleeps.append)
        self.store: GraphDrafts = GraphDrafts(self.client, open_context(config))


@pytest.fixture
def box(server: tuple[GraphFake, Path], fake: GraphFake) -> Iterator[Box]:
    b = Box(fake, server[1])
    yield b
    b.client.close()


def draft(key: str = "k" * 32, text: str = "Dear Jordan,\n\nCould we move our interview?\n\nAlex", *,
          thread_id: str | None = None, subject: str = "Rescheduling our interview") -> DraftMessage:
    return DraftMessage(key=key, sender=Address("alex@example.com", "Alex Morgan"),
                        to=(Address(JORDAN[1], JORDAN[0]),), subject=subject, text=text, thread_id=thread_id)


def interview_event(**kw: Any) -> Event:
    values: dict[str, Any] = dict(account="work", source_id="default/x", title=TITLE,
                                  start=NOW + timedelta(days=2), end=NOW + timedelta(days=2, hours=1),
                                  organizer=person(JORDAN[1], JORDAN[0], Response.ORGANIZER))
    values.update(kw)
    return Event(**values)


# ---- create / fate / update / delete ----------------------------------------------------------


def test_a_new_draft_carries_our_key_and_is_untouched(box: Box, fake: GraphFake) -> None:
    ref = box.store.create(draft())
    (stored,) = fake.drafts()
    assert stored["id"] == ref.id and stored["isDraft"]
    assert fake.draft_key(stored) == "k" * 32
    assert {"name": "X-Salvage-Key", "value": "k" * 32} in stored["internetMessageHeaders"]
    assert stored["props"][KEY_PROPERTY] == "k" * 32
    assert stored["toRecipients"] == [{"emailAddress": {"address": JORDAN[1], "name": JORDAN[0]}}]
    assert stored["body"] == {"contentType": "text", "content": draft().text}
    assert ref.fingerprint == fingerprint(draft().text) and ref.created is not None
    assert box.store.fate(ref) is DraftFate.UNTOUCHED
    assert fake.count("POST") == 1 and fake.count("POST", "createReply") == 0


def test_soft_and_hard_deleted_drafts_are_deleted_and_the_trash_is_looked_up_once(box: Box, fake: GraphFake) -> None:
    """Graph-specific: a deleted draft may sit in Deleted Items or be gone (the contract suite covers the rest)."""
    refs = [box.store.create(draft(key=f"{i}" * 32)) for i in range(2)]
    fake.user_deletes(refs[0].id)
    fake.user_deletes(refs[1].id, hard=True)
    assert [box.store.fate(r) for r in refs] == [DraftFate.DELETED, DraftFate.DELETED]
    assert fake.count("GET", "/mailFolders/deleteditems") == 1  # looked up once, then cached


def test_find_thread_picks_the_invitation_from_the_organizer(box: Box, fake: GraphFake) -> None:
    fake.add_invitation(f"FW: {TITLE}", ("Someone Else", "other@acme-robotics.example"))
    fake.add_invitation(f"Re: {TITLE} notes", JORDAN, odata_type="#microsoft.graph.message",
                        received=NOW + timedelta(hours=1))
    invitation = fake.add_invitation(TITLE, JORDAN, received=NOW)
    fake.add_invitation("Other role", JORDAN)
    thread = box.store.find_thread(interview_event())
    assert thread is not None
    assert thread.thread_id == invitation
    assert thread.message_id == fake.messages[invitation]["internetMessageId"]
    assert thread.subject == TITLE


def test_read_invitation_returns_the_invitation_as_plain_text(box: Box, fake: GraphFake) -> None:
    fake.add_invitation(TITLE, JORDAN, received=NOW, html=(
        "<html><body><p>Hi Alex,</p><p>Confirming <b>Thursday, November 26 at 2pm ET</b>.<br>"
        "Backup line: +1 646 555 0142</p></body></html>"))
    email = box.store.read_invitation(interview_event())
    assert email is not None and email.subject == TITLE and email.received == NOW
    assert "Thursday, November 26 at 2pm ET" in email.text and "<b>" not in email.text
    assert "+1 646 555 0142" in email.text
    gets = [r for r in fake.requests if r.method == "GET" and "/me/messages/" in r.path]
    assert gets and 'outlook.body-content-type="text"' in gets[-1].prefer
    fake.messages.clear()
    assert box.store.read_invitation(interview_event()) is None


def test_find_thread_when_there_is_nothing_to_reply_to(box: Box, fake: GraphFake) -> None:
    fake.add_invitation("Unrelated", JORDAN)
    assert box.store.find_thread(interview_event()) is None
    assert box.store.find_thread(interview_event(organizer=None)) is None
    me = person("alex@example.com", "Alex", Response.ORGANIZER, is_self=True)
    before = fake.count()
    assert box.store.find_thread(interview_event(organizer=me)) is None
    assert fake.count() == before  # the user's own event: no search at all


def test_a_reply_draft_is_threaded_and_untouched_despite_the_quoted_invitation(box: Box, fake: GraphFake) -> None:
    invitation = fake.add_invitation(TITLE, JORDAN)
    ref = box.store.create(draft(thread_id=invitation, subject=f"Re: {TITLE}"))
    (stored,) = fake.drafts()
    assert fake.count("POST", f"/me/messages/{invitation}/createReply") == 1
    assert stored["conversationId"] == fake.messages[invitation]["conversationId"]
    assert stored["inReplyTo"] == fake.messages[invitation]["internetMessageId"]
    assert "From: Jordan Lee" in stored["body"]["content"]  # Outlook quoted the invitation
    assert fake.draft_key(stored) == "k" * 32
    assert box.store.fate(ref) is DraftFate.UNTOUCHED
    assert box.store.find_by_key("k" * 32) is not None


def test_reply_without_header_support_still_carries_the_key(box: Box, fake: GraphFake) -> None:
    fake.reply_accepts_headers = False
    invitation = fake.add_invitation(TITLE, JORDAN)
    ref = box.store.create(draft(thread_id=invitation))
    (stored,) = fake.drafts()
    assert stored["props"][KEY_PROPERTY] == "k" * 32 and not stored["internetMessageHeaders"]
    found = box.store.find_by_key("k" * 32)
    assert found is not None and (found.id, found.fingerprint, found.created) == (ref.id, ref.extra["stored"], ref.created)


def test_reply_without_extended_property_support_carries_the_header(box: Box, fake: GraphFake) -> None:
    fake.reply_accepts_properties = False
    invitation = fake.add_invitation(TITLE, JORDAN)
    ref = box.store.create(draft(thread_id=invitation))
    (stored,) = fake.drafts()
    assert {"name": "X-Salvage-Key", "value": "k" * 32} in stored["internetMessageHeaders"] and not stored["props"]
    assert fake.count("POST", "createReply") == 2 and stored["id"] == ref.id
    assert box.store.fate(ref) is DraftFate.UNTOUCHED


def test_the_lifecycle_check_of_a_draft_in_drafts_is_one_request(box: Box, fake: GraphFake) -> None:
    ref = box.store.create(draft())
    fake.reset_counts()
    assert box.store.fate(ref) is DraftFate.UNTOUCHED
    assert fake.count() == 1 and fake.count("GET", f"/me/messages/{ref.id}") == 1


def test_an_invitation_gone_falls_back_to_a_new_message(box: Box, fake: GraphFake) -> None:
    ref = box.store.create(draft(thread_id="AAMkAGI2gone="))
    (stored,) = fake.drafts()
    assert stored["id"] == ref.id and fake.count("POST", "/me/messages") == 2


def test_update_replaces_the_content_in_place(box: Box, fake: GraphFake) -> None:
    ref = box.store.create(draft())
    new = box.store.update(ref, draft(text="Dear Jordan,\n\nNew times below.\n\nAlex", subject="New times"))
    (stored,) = fake.drafts()
    assert new.id == ref.id and stored["subject"] == "New times"
    assert stored["body"]["content"].startswith("Dear Jordan,\n\nNew times")
    assert new.fingerprint == fingerprint("Dear Jordan,\n\nNew times below.\n\nAlex")
    assert box.store.fate(new) is DraftFate.UNTOUCHED
    assert fake.count("PATCH") == 1
    fake.user_deletes(ref.id, hard=True)
    with pytest.raises(ProviderError, match="no longer exists"):
        box.store.update(new, draft())


@pytest.mark.parametrize("gone_status", [404, 403])
def test_delete_withdraws_and_tolerates_a_gone_draft(box: Box, fake: GraphFake, gone_status: int) -> None:
    fake.deleted_delete_status = gone_status
    ref = box.store.create(draft())
    box.store.delete(ref)
    assert fake.drafts() == []
    box.store.delete(ref)  # already gone: fine
    assert box.store.fate(ref) is DraftFate.DELETED


def test_find_by_key(box: Box, fake: GraphFake) -> None:
    for i in range(60):  # more than one page of drafts
        fake.messages[f"other{i}"] = {**fake._new_message({"subject": f"mine {i}"}, "drafts"), "id": f"other{i}"}
    ref = box.store.create(draft(key="f" * 32))
    found = box.store.find_by_key("f" * 32)
    assert found is not None and found.id == ref.id and found.fingerprint == ref.extra["stored"]
    assert box.store.find_by_key("0" * 32) is None


# ---- resilience of the creating POST ----------------------------------------------------------


def test_a_create_whose_answer_is_lost_makes_no_duplicate(server: tuple[GraphFake, Path], fake: GraphFake) -> None:
    b = Box(fake, server[1], timeout_seconds=0.3)
    try:
        fake.add_fault("/me/messages", method="POST", delay_after=0.8)  # Outlook acted; the answer never came
        ref = b.store.create(draft())
        (stored,) = fake.drafts()
        assert stored["id"] == ref.id and ref.fingerprint == fingerprint(draft().text)
        assert fake.count("POST") == 1
    finally:
        b.client.close()


def test_a_throttled_create_is_sent_again_after_retry_after(box: Box, fake: GraphFake) -> None:
    fake.throttle("/me/messages", retry_after=3, method="POST")
    ref = box.store.create(draft())
    assert [m["id"] for m in fake.drafts()] == [ref.id]
    assert box.sleeps == [3.0] and fake.count("POST") == 2


def test_a_503_on_create_then_success(box: Box, fake: GraphFake) -> None:
    fake.unavailable("/me/messages", method="POST")
    box.store.create(draft())
    assert len(fake.drafts()) == 1 and len(box.sleeps) == 1


# ---- salvage auth / salvage run --once against the fake ----------------------------------------

START = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
HOME_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//salvage tests//EN
BEGIN:VEVENT
UID:dentist@home.example
DTSTAMP:20261120T100000Z
DTSTART:20261127T143000Z
DTEND:20261127T153000Z
SUMMARY:Dentist
END:VEVENT
{extra}END:VCALENDAR
"""
HOME_INTERVIEW = """BEGIN:VEVENT
UID:globex-interview@globex.example
DTSTAMP:20261120T100000Z
DTSTART:20261127T150000Z
DTEND:20261127T160000Z
SUMMARY:Interview with Globex
ORGANIZER;CN=Gina Recruiter:mailto:gina@globex.example
ATTENDEE;CN=Alex Morgan;PARTSTAT=ACCEPTED:mailto:alex@example.com
END:VEVENT
"""


def seed_interview(fake: GraphFake, start: datetime = START, **fields: Any) -> str:
    event = fake.add_event(
        TITLE, start, start + timedelta(hours=1), organizer=JORDAN,
        attendees=[("Alex Morgan", "alex@example.com", "required", "accepted")],
        body="Scheduled via Greenhouse. Join: https://acme.zoom.us/j/123",
        responseStatus={"response": "accepted", "time": "2026-11-20T10:00:00Z"},
        original_zone="Eastern Standard Time", **fields,
    )
    fake.add_event("Quarterly planning", start - timedelta(minutes=30), start + timedelta(hours=1))
    fake.add_event("Offsite", date(2026, 11, 25), date(2026, 11, 26), isAllDay=True, showAs="oof",
                   original_zone="tzone://Microsoft/Custom")
    return event


class Cli:
    """The real `salvage` command (daemon.cli.main.main) on a config whose account 'work' uses the fake."""

    def __init__(self, fake: GraphFake, state: Path, capsys: pytest.CaptureFixture[str], *, home: bool = False,
                 **microsoft: Any) -> None:
        self.fake = fake
        self.capsys = capsys
        data = json.loads(config_text(fake, state, **microsoft))
        if home:  # a second account that has nothing to do with Microsoft
            self.home_ics = state / "home.ics"
            self.home_ics.write_text(HOME_ICS.format(extra=""))
            self.home_drafts = state / "home-drafts"
            data["accounts"].append({"name": "home", "calendar": {"type": "ics", "path": str(self.home_ics)},
                                     "drafts": {"type": "folder", "path": str(self.home_drafts)}})
        self.path = state / "config.yaml"
        self.path.write_text(json.dumps(data))

    def __call__(self, *args: str) -> tuple[int, str]:
        from daemon.cli import main

        self.capsys.readouterr()
        code = main([*args, "--config", str(self.path)])
        captured = self.capsys.readouterr()
        return code, captured.out + captured.err

    def auth(self) -> str:
        code, out = self("auth", "work", "--no-browser")
        assert code == 0, out
        return out

    def run(self, now: datetime = NOW) -> tuple[int, str]:
        return self("run", "--once", "--now", now.isoformat())


@pytest.fixture
def e2e(tmp_path: Path) -> Iterator[GraphFake]:
    with GraphFake() as graph:
        yield graph
        assert graph.violations == []
        assert not any(r.path.endswith(("/send", "/sendMail")) for r in graph.requests)


def the_draft(fake: GraphFake) -> dict[str, Any]:
    (made,) = fake.drafts()
    return made


def test_salvage_auth_and_run_once_make_a_reply_draft_then_an_idle_pass_costs_two_requests(
    e2e: GraphFake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = e2e
    seed_interview(fake)
    invitation = fake.add_invitation(TITLE, JORDAN)
    cli = Cli(fake, tmp_path, capsys)
    assert "enter the code" in cli.auth()
    assert (tmp_path / "work.msal.json").stat().st_mode & 0o777 == 0o600

    code, out = cli.run()
    assert code == 0, out
    made = the_draft(fake)
    assert fake.count("POST", f"/me/messages/{invitation}/createReply") == 1 and fake.count("POST") == 1
    assert made["conversationId"] == fake.messages[invitation]["conversationId"]
    assert made["inReplyTo"] == fake.messages[invitation]["internetMessageId"]
    assert [r["emailAddress"]["address"] for r in made["toRecipients"]] == [JORDAN[1]]
    keys = [h["value"] for h in made["internetMessageHeaders"] or () if h["name"] == "X-Salvage-Key"]
    assert len(keys) == 1 and len(keys[0]) >= 16
    assert "Quarterly planning" not in made["body"]["content"] + made["subject"]

    fake.reset_counts()
    code, out = cli.run()
    assert code == 0, out
    assert the_draft(fake)["id"] == made["id"]
    # The idle pass: one delta request for the one calendar, one lifecycle GET for the one live draft.
    assert fake.count() == 2, [r.target for r in fake.requests]
    assert fake.count("GET", "/me/calendarView/delta?$deltatoken=") == 1
    assert fake.count("GET", f"/me/messages/{made['id']}") == 1


@pytest.mark.parametrize("reported", ["Pacific Standard Time", "Tokyo Standard Time"])
def test_run_once_drafts_the_same_whatever_zone_graph_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reported: str
) -> None:
    bodies = []
    for zone_name in (None, reported):
        with GraphFake() as fake:
            fake.report_zone = zone_name  # a Windows zone name, as when Prefer: outlook.timezone is ignored
            # the same interview both times (its iCalUId names the case, and so its wording)
            seed_interview(fake, iCalUId="040000008200E00074C5B7101A82E00800000000000000000000000000000000AB")
            state = tmp_path / (zone_name or "utc").replace(" ", "-")
            state.mkdir()
            cli = Cli(fake, state, capsys)
            cli.auth()
            code, out = cli.run()
            assert code == 0, out
            made = the_draft(fake)
            bodies.append((made["subject"], made["body"]["content"]))
            assert fake.violations == []
    assert bodies[0] == bodies[1]
    assert "Wednesday 25 November" not in bodies[0][1]  # the all-day out-of-office day is not offered


FAULTS = ["410", "syncStateNotFound", "429", "503", "timeout", "lost-create", "refresh"]


@pytest.mark.parametrize("fault", FAULTS)
def test_run_once_survives(e2e: GraphFake, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str) -> None:
    """Each fault, through `salvage run --once`: nothing lost, no duplicate draft, an idle pass afterwards."""
    fake = e2e
    interview = seed_interview(fake)
    invitation = fake.add_invitation(TITLE, JORDAN)
    cli = Cli(fake, tmp_path, capsys, home=fault == "refresh",
              **({"timeout_seconds": 1} if fault in ("timeout", "lost-create") else {}))
    cli.auth()
    if fault == "lost-create":  # Outlook made the reply draft but the answer never arrived
        fake.add_fault("/createReply", method="POST", delay_after=1.6)
    code, out = cli.run()
    assert code == 0, out
    made = the_draft(fake)
    if fault == "lost-create":
        assert fake.count("POST", f"/me/messages/{invitation}/createReply") == 1
        assert fake.count("GET", "/me/mailFolders/drafts/messages") >= 1  # looked for its key before retrying
    fake.reset_counts()

    fake.update_event(interview, start=START + timedelta(minutes=30), end=START + timedelta(minutes=90))
    if fault in ("410", "syncStateNotFound"):
        fake.expire_delta_tokens(fault)
    elif fault == "429":
        fake.throttle("calendarView/delta", retry_after=1)
        fake.throttle(f"/me/messages/{made['id']}", retry_after=1, method="GET")
    elif fault == "503":
        fake.unavailable("calendarView/delta")
        fake.unavailable(f"/me/messages/{made['id']}", method="PATCH")
    elif fault == "timeout":
        fake.add_fault("calendarView/delta", delay=1.6)
    elif fault == "refresh":
        fake.fail_refresh = True
        fake.expire_access_tokens()
        cli.home_ics.write_text(HOME_ICS.format(extra=HOME_INTERVIEW))
        code, out = cli.run()
        assert "salvage auth work" in out, out
        assert the_draft(fake) == made  # nothing touched while signed out
        assert len(list(cli.home_drafts.glob("*.eml"))) == 1  # the other account went on
        fake.fail_refresh = False
        cli.auth()
    code, out = cli.run()
    assert code == 0, out

    expected = {"410": 410, "syncStateNotFound": 400, "429": 429, "503": 503}
    if fault in expected:  # the fault really happened
        assert any(r.status == expected[fault] for r in fake.requests)
    if fault in ("410", "syncStateNotFound"):
        assert fake.count("GET", "startDateTime=") == 1  # a new full round
    if fault == "timeout":
        assert fake.count("GET", "$deltatoken=") == 2  # the timed-out request, then the retry
    updated = the_draft(fake)  # still one draft, the same one, brought up to date
    assert updated["id"] == made["id"] and updated["body"] != made["body"]
    assert fake.count("POST") == 0

    fake.reset_counts()
    code, out = cli.run()
    assert code == 0, out
    assert fake.count() == 2 and the_draft(fake)["id"] == made["id"]


# ---- hostile text (issue 8, item 1) -----------------------------------------------------------


def test_graph_drafts_get_neutral_subjects_and_names(box: Box, fake: GraphFake) -> None:
    hostile = DraftMessage(key="k" * 32, sender=Address("alex@example.com", "Alex Morgan"),
                           to=(Address(JORDAN[1], "=?utf-8?q?Jordan_=3Cboss=40acme.example=3E?="),),
                           subject="Interview =?utf-8?q?x=0D=0ABcc:_spy=40evil.example?=\u202e", text="Dear Jordan,\n")
    box.store.create(hostile)
    (stored,) = fake.drafts()
    assert stored["toRecipients"] == [{"emailAddress": {"address": JORDAN[1]}}]
    assert stored["subject"] == "Interview x Bcc: spy@evil.example"
    assert [h["name"] for h in stored["internetMessageHeaders"]] == ["X-Salvage-Key"]


@pytest.mark.parametrize("address", ["jordan@acme-robotics.example,spy@evil.example", "jordan@acme-robotics.example\x00",
                                     "jordan@acme-robotics.example\u202e", "jordan@" + "a" * 250 + ".example"])
def test_a_smuggled_address_never_reaches_graph(box: Box, fake: GraphFake, address: str) -> None:
    from providers.mime import UnsafeDraft

    with pytest.raises(UnsafeDraft):
        box.store.create(DraftMessage(key="k" * 32, sender=Address("alex@example.com"), to=(Address(address),),
                                      subject="s", text="t"))
    assert fake.count("POST") == 0
