"""Gmail drafts against the loopback fake, through the real google-api-python-client."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from fakes.google_fake import CALENDAR_READONLY, GMAIL_COMPOSE, GoogleFake, config_yaml, open_gmail

from daemon.config import parse_config
from daemon.core.model import Event, person
from providers import registry
from providers.base import Address, DraftFate, DraftMessage, DraftStore, ProviderError, ThreadInfo
from providers.google.gmail import GmailDrafts
from providers.mime import KEY_HEADER, plain_body

UTC = timezone.utc
ME = "me@example.com"
RECRUITER = "rita@acme.example"


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake() as server:
        server.add_client()
        server.add_calendar(ME, primary=True)
        yield server
        assert server.count("drafts.send") == server.count("messages.send") == 0  # never sends


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def mailbox(fake: GoogleFake, tmp_path: Path, *, scopes: Any = None, sleeps: Sleeps | None = None, **kw: Any
            ) -> GmailDrafts:
    if scopes is not None:
        fake.token_file(tmp_path / "tokens" / "g.google.json", scopes=scopes)
    elif not (tmp_path / "tokens" / "g.google.json").exists():
        fake.token_file(tmp_path / "tokens" / "g.google.json")
    config = parse_config(config_yaml(fake, tmp_path, **kw))
    return open_gmail(config, sleep=sleeps if sleeps is not None else Sleeps(), user_addresses=[ME])


def message(key: str = "k1", text: str = "Dear Rita,\n\nCould we move our interview?\n\nAlex\n",
            thread: ThreadInfo | None = None, subject: str = "Rescheduling our interview") -> DraftMessage:
    refs: tuple[str, ...] = ()
    if thread is not None:
        subject = f"Re: {thread.subject}"
        refs = thread.references
    return DraftMessage(
        key=key, sender=Address(ME, "Alex Morgan"), to=(Address(RECRUITER, "Rita Recruiter"),), subject=subject,
        text=text, in_reply_to=thread.message_id if thread else None, references=refs,
        thread_id=thread.thread_id if thread else None,
    )


def interview(**kw: Any) -> Event:
    base: dict[str, Any] = dict(
        account="g", source_id="primary/iv1", title="Technical interview",
        start=datetime(2026, 12, 1, 14, tzinfo=UTC), end=datetime(2026, 12, 1, 15, tzinfo=UTC),
        organizer=person(RECRUITER), ical_uid="iv1@acme.example", created=datetime(2026, 11, 10, tzinfo=UTC),
    )
    base.update(kw)
    return Event(**base)


def test_registry_opens_the_gmail_store(fake: GoogleFake, tmp_path: Path) -> None:
    config = parse_config(config_yaml(fake, tmp_path))
    assert isinstance(registry.open_drafts(config.accounts[0], registry.context(config.accounts[0], config)), DraftStore)


def test_create_puts_an_untouched_draft_with_our_key(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message())
    stored = fake.draft_message(ref.id)
    parsed = stored.parsed
    assert parsed["To"] == "Rita Recruiter <rita@acme.example>" and parsed["From"] == "Alex Morgan <me@example.com>"
    assert parsed["Subject"] == "Rescheduling our interview" and parsed[KEY_HEADER] == "k1"
    assert "Could we move our interview?" in plain_body(parsed)
    assert stored.labels == ["DRAFT"] and ref.thread_id == stored.thread_id and ref.created is not None
    fake.reset_counts()
    assert box.fate(ref) is DraftFate.UNTOUCHED
    assert fake.routes_called() == ["drafts.get"]  # one lifecycle check per live draft
    assert fake.requests[0].query["format"] == ["raw"]


def test_threaded_reply_to_the_invitation(fake: GoogleFake, tmp_path: Path) -> None:
    fake.add_invitation(organizer=f"Rita Recruiter <{RECRUITER}>", to=ME, uid="other@acme.example",
                        subject="Invitation: Coffee chat @ Mon 30 Nov")
    invite = fake.add_invitation(organizer=f"Rita Recruiter <{RECRUITER}>", to=ME, uid="iv1@acme.example",
                                 subject="Invitation: Technical interview @ Tue 1 Dec 2026 2pm - 3pm (GMT)",
                                 message_id="<invite-1@calendar.example>")
    box = mailbox(fake, tmp_path)

    thread = box.find_thread(interview())

    assert thread == ThreadInfo(thread_id=invite.thread_id, message_id="<invite-1@calendar.example>", references=(),
                                subject="Invitation: Technical interview @ Tue 1 Dec 2026 2pm - 3pm (GMT)",
                                mail_id=invite.id)
    query = [r for r in fake.requests if r.route == "messages.list"][0].query["q"][0]
    assert f"from:{RECRUITER}" in query and "filename:ics" in query
    gets = [r.query for r in fake.requests if r.route == "messages.get"]
    assert all(q["format"] == ["metadata"] for q in gets)
    assert set(gets[0]["metadataHeaders"]) == {"Message-ID", "References", "Subject"}

    ref = box.create(message(thread=thread))

    stored = fake.draft_message(ref.id).parsed
    assert ref.thread_id == invite.thread_id == fake.draft_message(ref.id).thread_id
    assert stored["In-Reply-To"] == "<invite-1@calendar.example>"
    assert stored["References"] == "<invite-1@calendar.example>"
    assert stored["Subject"].startswith("Re: Invitation: Technical interview")


def test_invitation_confirmed_by_its_ical_uid(fake: GoogleFake, tmp_path: Path) -> None:
    invite = fake.add_invitation(organizer=RECRUITER, to=ME, uid="iv1@acme.example", subject="Your ACME interview",
                                 message_id="<x@acme.example>")
    fake.add_invitation(organizer=RECRUITER, to=ME, uid="someone-else@acme.example", subject="Another ACME thing")
    thread = mailbox(fake, tmp_path).find_thread(interview())
    assert thread is not None and thread.thread_id == invite.thread_id and thread.message_id == "<x@acme.example>"
    assert any(r.query.get("format") == ["full"] for r in fake.requests if r.route == "messages.get")


def test_no_invitation_found(fake: GoogleFake, tmp_path: Path) -> None:
    fake.add_invitation(organizer="someone@else.example", to=ME, uid="zzz", subject="Unrelated")
    box = mailbox(fake, tmp_path)
    assert box.find_thread(interview()) is None
    assert box.find_thread(interview(organizer=person(ME, is_self=True))) is None
    assert box.find_thread(interview(organizer=None)) is None


def test_read_invitation_returns_the_body_of_the_invitation_found(fake: GoogleFake, tmp_path: Path) -> None:
    fake.add_invitation(organizer=RECRUITER, to=ME, uid="iv1@acme.example", subject="Invitation: Technical interview",
                        text="Confirming Tuesday, December 1 at 2pm ET.\nIf the link fails: +1 646 555 0142")
    box = mailbox(fake, tmp_path)
    email = box.read_invitation(interview())
    assert email is not None and email.subject == "Invitation: Technical interview"
    assert email.text.startswith("Confirming Tuesday, December 1 at 2pm ET.") and email.received is not None
    assert "BEGIN:VCALENDAR" not in email.text  # the body, not the calendar part


def test_read_invitation_reads_an_html_only_body_as_text(fake: GoogleFake, tmp_path: Path) -> None:
    fake.add_invitation(organizer=RECRUITER, to=ME, uid="iv1@acme.example", subject="Invitation: Technical interview",
                        html="<p>See you at <b>10am PT</b></p>")
    email = mailbox(fake, tmp_path).read_invitation(interview())
    assert email is not None and email.text == "See you at 10am PT"
    assert mailbox(fake, tmp_path, read_mail=False).read_invitation(interview()) is None


def test_without_read_mail_drafts_are_unthreaded_and_mail_is_never_read(fake: GoogleFake, tmp_path: Path) -> None:
    fake.add_invitation(organizer=RECRUITER, to=ME, uid="iv1@acme.example", subject="Technical interview")
    box = mailbox(fake, tmp_path, scopes=[CALENDAR_READONLY, GMAIL_COMPOSE], read_mail=False)
    assert box.find_thread(interview()) is None
    ref = box.create(message())
    fake.user_send(ref.id)
    assert box.fate(ref) is DraftFate.DELETED  # cannot tell sent from deleted without reading mail
    assert not [r for r in fake.requests if r.route.startswith(("messages.", "threads."))]


def test_read_mail_without_the_scope_degrades_to_unthreaded(fake: GoogleFake, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    fake.add_invitation(organizer=RECRUITER, to=ME, uid="iv1@acme.example", subject="Technical interview")
    box = mailbox(fake, tmp_path, scopes=[CALENDAR_READONLY, GMAIL_COMPOSE], read_mail=True)
    assert box.find_thread(interview()) is None
    assert box.find_thread(interview()) is None
    assert caplog.text.count("lacks gmail.readonly") == 1
    assert fake.count("messages.list") == 0


def test_a_draft_sent_or_discarded_in_the_invitation_thread(fake: GoogleFake, tmp_path: Path) -> None:
    """Google-specific: a sent reply leaves its SENT copy in the invitation's thread (the contract suite
    covers the plain fates)."""
    invite = fake.add_invitation(organizer=RECRUITER, to=ME, uid="iv1@acme.example",
                                 subject="Invitation: Technical interview", message_id="<inv@acme.example>")
    box = mailbox(fake, tmp_path)
    thread = ThreadInfo(invite.thread_id, "<inv@acme.example>", (), "Invitation: Technical interview")
    gone = box.create(message(key="k2", thread=thread, text="Another draft\n"))
    fake.user_discard(gone.id)
    assert box.fate(gone) is DraftFate.DELETED  # the thread holds no SENT copy
    sent = box.create(message(key="k1", thread=thread))
    fake.user_send(sent.id)
    assert box.fate(sent) is DraftFate.SENT
    # (Two drafts in one thread to the same person, one sent and one discarded, cannot be told apart.)


def test_fate_from_a_full_format_answer(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message(text="Caf\u00e9 at 3pm?\n"))
    draft = fake._draft_json(ref.id, "full")  # what a server ignoring format=raw would send
    fake.fail("drafts.get", 200, body=json.dumps(draft).encode())
    assert box.fate(ref) is DraftFate.UNTOUCHED


def test_update_replaces_content_and_keeps_the_id(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message())
    new = box.update(ref, message(text="Dear Rita,\n\nThe new time is 3pm.\n"))
    assert new.id == ref.id and new.fingerprint != ref.fingerprint and new.created == ref.created
    assert "The new time is 3pm." in plain_body(fake.draft_message(ref.id).parsed)
    assert len(fake.drafts) == 1
    assert box.fate(new) is DraftFate.UNTOUCHED and box.fate(ref) is DraftFate.EDITED
    assert [r.method for r in fake.requests if r.route == "drafts.update"] == ["PUT"]


def test_update_of_a_vanished_draft_is_a_plain_error(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message())
    fake.user_discard(ref.id)
    with pytest.raises(ProviderError, match="no longer exists"):
        box.update(ref, message(text="x"))


def test_delete_withdraws_and_tolerates_a_gone_draft(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message())
    box.delete(ref)
    assert fake.drafts == {}
    box.delete(ref)
    assert fake.count("drafts.delete", status=404) == 1


def test_find_by_key(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    refs = [box.create(message(key=f"key-{i}", text=f"Draft {i}\n")) for i in range(3)]
    found = box.find_by_key("key-1")
    assert found is not None and found.id == refs[1].id and found.fingerprint == refs[1].fingerprint
    assert found.thread_id == refs[1].thread_id and found.created is not None
    assert box.find_by_key("nope") is None


def test_thread_gone_falls_back_to_an_unthreaded_draft(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message(thread=ThreadInfo("deadbeef", "<gone@x>", (), "Invitation: X")))
    assert fake.draft_message(ref.id).thread_id == ref.thread_id != "deadbeef"
    assert len(fake.drafts) == 1


def test_create_rate_limited_is_resent_once_accepted(fake: GoogleFake, tmp_path: Path) -> None:
    sleeps = Sleeps()
    box = mailbox(fake, tmp_path, sleeps=sleeps)
    fake.fail("drafts.create", 429, retry_after="3", times=2)
    box.create(message())
    assert len(fake.drafts) == 1 and sleeps == [3.0, 3.0] and fake.count("drafts.list") == 0


def test_create_timeout_after_gmail_acted_makes_no_duplicate(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path, timeout=0.4)
    box.create(message(key="other"))
    fake.delay("drafts.create", 1.2)  # Gmail makes the draft but the answer comes too late
    ref = box.create(message(key="k-slow"))
    assert len(fake.drafts) == 2 and fake.count("drafts.create") == 2
    assert fake.draft_message(ref.id).parsed[KEY_HEADER] == "k-slow"


def test_create_after_a_connection_reset_makes_one_draft(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    fake.reset("drafts.create")
    ref = box.create(message())
    assert list(fake.drafts) == [ref.id] and fake.count("drafts.create") == 2 and fake.count("drafts.list") == 1


def test_create_500_before_gmail_acted_is_resent(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    fake.fail("drafts.create", 500)
    ref = box.create(message())
    assert len(fake.drafts) == 1 and fake.count("drafts.create") == 2 and fake.count("drafts.list") == 1
    assert ref.id in fake.drafts


def test_fate_asks_again_when_the_answer_carries_no_message(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message())
    fake.reset_counts()
    fake.fail("drafts.get", 200, body=json.dumps({"id": ref.id, "message": {"id": "m", "threadId": "t"}}).encode())
    assert box.fate(ref) is DraftFate.UNTOUCHED
    assert [r.query["format"] for r in fake.requests] == [["raw"], ["full"]]


def test_an_html_404_for_a_draft_is_an_error_not_a_fate(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message())
    fake.fail("drafts.get", 404, body=b"<html>Not Found</html>")  # a proxy's page, not Gmail's "no such draft"
    with pytest.raises(ProviderError, match="not an answer from Google's API"):
        box.fate(ref)
    assert box.fate(ref) is DraftFate.UNTOUCHED
    fake.user_discard(ref.id)
    assert box.fate(ref) is DraftFate.DELETED  # Gmail's own JSON 404: positive evidence


def test_invitation_without_an_ics_attachment_or_older_than_the_event(fake: GoogleFake, tmp_path: Path) -> None:
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"] = f"Rita Recruiter <{RECRUITER}>"
    mail["To"] = ME
    mail["Subject"] = "Technical interview on 1 December"
    mail["Message-ID"] = "<plain@acme.example>"
    mail.set_content("Looking forward to it.")
    old = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp() * 1000)
    invite = fake.add_message(mail.as_bytes(), internal_date=old)
    thread = mailbox(fake, tmp_path).find_thread(interview())
    assert thread is not None and thread.thread_id == invite.thread_id and thread.message_id == "<plain@acme.example>"


def test_find_by_key_reads_headers_from_raw_when_metadata_has_none(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    ref = box.create(message(key="k-raw"))
    fake.fail("drafts.get", 200, body=json.dumps(fake._draft_json(ref.id, "raw")).encode())
    found = box.find_by_key("k-raw")
    assert found is not None and found.id == ref.id and found.fingerprint == ref.fingerprint
    assert found.extra.get("to") == RECRUITER


# ---- the whole pipeline: `salvage run --once` against the fake -----------------------------------

NOW = "2026-11-24T09:00:00Z"


def seed_interviews(fake: GoogleFake) -> Any:
    fake.put_event(ME, {
        "id": "iv1", "iCalUID": "iv1@acme.example", "summary": "Technical interview - Acme Robotics",
        "start": {"dateTime": "2026-11-25T14:00:00Z", "timeZone": "Europe/London"},
        "end": {"dateTime": "2026-11-25T15:00:00Z", "timeZone": "Europe/London"},
        "organizer": {"email": "jordan.lee@acme-robotics.example", "displayName": "Jordan Lee"},
        "attendees": [{"email": "jordan.lee@acme-robotics.example", "displayName": "Jordan Lee", "organizer": True,
                       "responseStatus": "accepted"}, {"email": ME, "self": True, "responseStatus": "accepted"}],
        "hangoutLink": "https://meet.google.com/abc-defg-hij"})
    fake.put_event(ME, {"id": "dentist", "summary": "Dentist", "start": {"dateTime": "2026-11-25T13:30:00Z"},
                        "end": {"dateTime": "2026-11-25T14:30:00Z"}})
    fake.put_event(ME, {
        "id": "iv2", "summary": "Video interview - Wayne Enterprises",
        "start": {"dateTime": "2026-11-25T16:30:00Z"}, "end": {"dateTime": "2026-11-25T17:15:00Z"},
        "organizer": {"email": "lucius.fox@wayne.example", "displayName": "Lucius Fox"},
        "attendees": [{"email": ME, "self": True, "responseStatus": "accepted"},
                      {"email": "lucius.fox@wayne.example", "organizer": True, "responseStatus": "accepted"}]})
    return fake.add_invitation(
        organizer="Jordan Lee <jordan.lee@acme-robotics.example>", to=ME, uid="iv1@acme.example",
        subject="Invitation: Technical interview - Acme Robotics @ Wed 25 Nov 2026 2pm - 3pm (GMT)",
        message_id="<inv1@acme-robotics.example>")


def snapshot(fake: GoogleFake) -> dict[str, bytes]:
    return {d: fake.messages[m].raw for d, m in fake.drafts.items()}


def test_salvage_run_once_end_to_end(fake: GoogleFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.cli import main
    from daemon.core.model import ActionKind, draft_key
    from daemon.engine.state import StateStore

    sleeps = Sleeps()
    monkeypatch.setattr("providers.registry.default_sleep", sleeps)  # the retry clock, not the client library
    invite = seed_interviews(fake)
    fake.token_file(tmp_path / "tokens" / "g.google.json")
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(fake, tmp_path, email=ME))
    run = ["run", "--once", "--config", str(config), "--now", NOW]

    assert main(run) == 0

    assert len(fake.drafts) == 2
    drafts = {str(fake.draft_message(d).parsed["To"]): fake.draft_message(d) for d in fake.drafts}
    acme = drafts["Jordan Lee <jordan.lee@acme-robotics.example>"]
    parsed = acme.parsed
    assert acme.thread_id == invite.thread_id
    assert parsed["Subject"] == "Re: Invitation: Technical interview - Acme Robotics @ Wed 25 Nov 2026 2pm - 3pm (GMT)"
    assert parsed["In-Reply-To"] == "<inv1@acme-robotics.example>"
    assert parsed["References"] == "<inv1@acme-robotics.example>"
    assert parsed["From"] == f"Alex Morgan <{ME}>"
    assert parsed[KEY_HEADER] == draft_key(ME.lower(), "iv1@acme.example", ActionKind.RESCHEDULE)  # the mailbox's
    body = plain_body(parsed)
    assert re.search(r"reschedul|move|another time|new time", body) and "Dentist" not in body  # the clash's other event stays private
    assert "Jordan" in body and "25 November" in body and "14:00" in body and "Alex Morgan" in body
    wayne = drafts["Lucius Fox <lucius.fox@wayne.example>"]
    assert wayne.thread_id != invite.thread_id and wayne.parsed["In-Reply-To"] is None
    assert "link" in plain_body(wayne.parsed)
    first = snapshot(fake)

    # An idle second pass: one request per calendar, one lifecycle check per live draft, no new draft.
    fake.reset_counts()
    assert main(run) == 0
    assert sorted(fake.routes_called()) == ["drafts.get", "drafts.get", "events.list"]
    assert snapshot(fake) == first

    # 410 on the sync token, a 429 burst with Retry-After, a 500 and a timeout: survived, nothing lost.
    config.write_text(config_yaml(fake, tmp_path, email=ME, timeout=0.5))
    fake.expire_sync_tokens()
    fake.put_event(ME, {  # booked meanwhile: must not be lost with the expired token
        "id": "iv3", "summary": "Video interview - Globex", "start": {"dateTime": "2026-11-25T10:00:00Z"},
        "end": {"dateTime": "2026-11-25T10:45:00Z"}, "organizer": {"email": "talent@globex.example"},
        "attendees": [{"email": ME, "self": True, "responseStatus": "accepted"},
                      {"email": "talent@globex.example", "organizer": True, "responseStatus": "accepted"}]})
    fake.fail("events.list", 429, retry_after="1", times=2)
    fake.fail("drafts.get", 500)
    fake.delay("drafts.get", 1.0)
    fake.reset_counts()
    assert main(run) == 0
    assert fake.count("events.list", status=410) == 1 and fake.count("events.list", status=200) == 1
    assert sleeps[:2] == [1.0, 1.0] and len(sleeps) == 4
    # The two drafts keep their ids (the reschedule one may be rewritten in place: its free slots
    # changed); the new interview got exactly one new draft.
    (globex,) = set(fake.drafts) - set(first)
    assert set(first) < set(fake.drafts) and len(fake.drafts) == 3
    assert str(fake.draft_message(globex).parsed["To"]) == "talent@globex.example"
    assert fake.count("drafts.create") == 1
    first = snapshot(fake)
    with StateStore.open(tmp_path / "state.sqlite3") as store:
        status = store.account_status("g")
        assert status is not None and status.error is None

    # invalid_grant: the account waits for `salvage auth`; its drafts are left alone.
    fake.revoke_all()
    assert main(run) == 1
    with StateStore.open(tmp_path / "state.sqlite3") as store:
        status = store.account_status("g")
        assert status is not None and status.needs_auth and "salvage auth g" in (status.error or "")
    assert snapshot(fake) == first

    # After re-authorising, the next pass carries on without duplicates.
    fake.token_file(tmp_path / "tokens" / "g.google.json")
    fake.reset_counts()
    assert main(run) == 0
    assert snapshot(fake) == first and fake.count("drafts.create") == 0
    with StateStore.open(tmp_path / "state.sqlite3") as store:
        status = store.account_status("g")
        assert status is not None and not status.needs_auth and status.error is None


def test_salvage_run_once_survives_create_faults_without_duplicates(
    fake: GoogleFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daemon.cli import main
    from daemon.core.model import DraftState
    from daemon.engine.state import StateStore

    sleeps = Sleeps()
    monkeypatch.setattr("providers.registry.default_sleep", sleeps)
    seed_interviews(fake)
    fake.token_file(tmp_path / "tokens" / "g.google.json")
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(fake, tmp_path, email=ME, timeout=0.5))
    run = ["run", "--once", "--config", str(config), "--now", NOW]
    # drafts.create: a 429 burst with Retry-After (refused), a 500 (refused before Gmail acted), then
    # a timeout after Gmail made the draft. Each must end as exactly one draft per action.
    fake.fail("drafts.create", 429, retry_after="2", times=2)
    fake.fail("drafts.create", 500)
    fake.delay("drafts.create", 1.2)

    assert main(run) == 0

    # 4 tries for the first draft (the slow one acted: found by its key, not re-sent), 1 for the second;
    # each creation first looks its key up (2 lists), and so does each retry after an ambiguous failure (2)
    assert fake.count("drafts.create") == 5 and fake.count("drafts.list") == 4
    assert sleeps[:2] == [2.0, 2.0] and len(sleeps) == 4
    keys = sorted(str(fake.draft_message(d).parsed[KEY_HEADER]) for d in fake.drafts)
    assert len(keys) == 2 and len(set(keys)) == 2
    with StateStore.open(tmp_path / "state.sqlite3") as store:
        live = store.drafts(states=(DraftState.UNTOUCHED,))
        assert sorted(r.key for r in live) == keys and {r.ref.id for r in live if r.ref} == set(fake.drafts)
    first = snapshot(fake)

    fake.reset_counts()
    assert main(run) == 0
    assert sorted(fake.routes_called()) == ["drafts.get", "drafts.get", "events.list"]
    assert snapshot(fake) == first


def test_invalid_grant_stops_only_that_account(fake: GoogleFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli import main

    monkeypatch.setattr("providers.registry.default_sleep", Sleeps())
    seed_interviews(fake)
    fake.token_file(tmp_path / "tokens" / "g.google.json")
    ics = tmp_path / "other.ics"
    folder = tmp_path / "folder-drafts"
    ics.write_text(ics_calendar([]))
    other = (f"  - name: other\n    calendar: {{type: ics, path: {ics}}}\n"
             f"    drafts: {{type: folder, path: {folder}}}\n")
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(fake, tmp_path, email=ME, extra=other))
    run = ["run", "--once", "--config", str(config), "--now", NOW]
    assert main(run) == 0
    first = snapshot(fake)
    assert len(first) == 2 and not list(folder.glob("*.eml"))

    fake.revoke_all()
    # While Google refuses the grant, the other account keeps working: a new interview there is drafted.
    ics.write_text(ics_calendar([ics_interview()]))
    capsys.readouterr()
    assert main(run) == 1  # one account failed; the other was still served
    assert main(run) == 1
    logged = capsys.readouterr().err
    assert logged.count("needs `salvage auth g`") == 1  # logged once, not at every pass
    assert "invalid_grant" in logged and "1//rt-" not in logged  # the refresh token itself is never shown
    assert len(list(folder.glob("*.eml"))) == 1
    assert snapshot(fake) == first and fake.count("drafts.create") == 2
    assert main(["status", "--config", str(config), "--now", NOW, "--format", "json"]) == 0
    shown = {a["name"]: a for a in json.loads(capsys.readouterr().out)["accounts"]}
    assert shown["g"]["needs_auth"] and "salvage auth g" in shown["g"]["error"]
    assert shown["other"]["ok"] and not shown["other"]["needs_auth"]
    assert main(["status", "--config", str(config), "--now", NOW, "--exit-code"]) == 1


def ics_interview() -> str:
    return ("BEGIN:VEVENT\r\nUID:initech-1@initech.example\r\nDTSTAMP:20261120T120000Z\r\n"
            "DTSTART:20261125T100000Z\r\nDTEND:20261125T104500Z\r\nSUMMARY:Video interview - Initech\r\n"
            "ORGANIZER;CN=Bill Lumbergh:mailto:bill@initech.example\r\n"
            "ATTENDEE;CN=Bill Lumbergh;PARTSTAT=ACCEPTED:mailto:bill@initech.example\r\n"
            f"ATTENDEE;CN=Alex Morgan;PARTSTAT=ACCEPTED:mailto:{ME}\r\nEND:VEVENT\r\n")


def ics_calendar(events: list[str]) -> str:
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + "".join(events) + "END:VCALENDAR\r\n"


# ---- hostile text (issue 8, item 1) -----------------------------------------------------------

EVIL_SUBJECT = "Interview =?utf-8?q?x=0D=0ABcc:_spy=40evil.example=0D=0A=0D=0Abody?= tomorrow"
EVIL_NAME = "=?utf-8?q?Rita=0D=0ABcc:_spy2=40evil.example?="


def test_encoded_word_line_breaks_cannot_add_recipients_to_a_gmail_draft(fake: GoogleFake, tmp_path: Path) -> None:
    box = mailbox(fake, tmp_path)
    hostile = DraftMessage(key="k1", sender=Address(ME, "Alex Morgan"), to=(Address(RECRUITER, EVIL_NAME),),
                           subject=EVIL_SUBJECT, text="Dear Rita,\n", in_reply_to="<=?utf-8?q?a=0D=0ABcc:_x@y?=>")
    ref = box.create(hostile)
    parsed = fake.draft_message(ref.id).parsed
    assert parsed["Bcc"] is None and parsed["In-Reply-To"] is None
    assert [a.addr_spec for a in parsed["To"].addresses] == [RECRUITER]
    assert parsed[KEY_HEADER] == "k1" and "\n" not in str(parsed["Subject"])
    assert set(parsed.keys()) <= {"From", "To", "Subject", "Message-ID", KEY_HEADER, "Content-Type",
                                  "Content-Transfer-Encoding", "MIME-Version"}


@pytest.mark.parametrize("address", ["rita@acme.example,spy@evil.example", "rita@acme.example\x00",
                                     "rita@acme.example\r\nBcc: spy@evil.example", "Rita <spy@evil.example>"])
def test_a_smuggled_address_never_reaches_gmail(fake: GoogleFake, tmp_path: Path, address: str) -> None:
    from providers.mime import UnsafeDraft

    box = mailbox(fake, tmp_path)
    with pytest.raises(UnsafeDraft, match="recipient address"):
        box.create(DraftMessage(key="k1", sender=Address(ME), to=(Address(address),), subject="s", text="t\n"))
    assert fake.count("drafts.create") == 0


def test_an_expired_saved_token_is_refreshed_before_use_not_refused(fake: GoogleFake, tmp_path: Path) -> None:
    """Issue 8, item 10: the saved expiry survives binding the token endpoint."""
    path = fake.token_file(tmp_path / "tokens" / "g.google.json", valid_access=True)
    info = json.loads(path.read_text())
    info["token"] = fake.issue_access_token(lifetime=-60)  # the server no longer accepts it
    info["expiry"] = "2020-01-01T00:00:00.000000Z"
    path.write_text(json.dumps(info))
    box = mailbox(fake, tmp_path)
    fake.reset_counts()
    assert box.find_by_key("no-such-key") is None
    assert fake.count("token") == 1 and fake.count(status=401) == 0


def test_salvage_check_reads_the_invitation_email_and_reports_a_time_mismatch(
        fake: GoogleFake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli import main

    fake.put_event(ME, {
        "id": "iv9", "iCalUID": "iv9@initech.example", "summary": "Interview: Staff Engineer - Initech",
        "start": {"dateTime": "2026-11-25T14:00:00-08:00", "timeZone": "America/Los_Angeles"},
        "end": {"dateTime": "2026-11-25T15:00:00-08:00", "timeZone": "America/Los_Angeles"},
        "organizer": {"email": "riley@initech.example", "displayName": "Riley Chen"},
        "attendees": [{"email": ME, "self": True, "responseStatus": "accepted"},
                      {"email": "riley@initech.example", "organizer": True, "responseStatus": "accepted"}]})
    fake.add_invitation(organizer="Riley Chen <riley@initech.example>", to=ME, uid="iv9@initech.example",
                        subject="Invitation: Interview: Staff Engineer - Initech",
                        text="Hi Alex, looking forward to Wednesday, November 25 at 2pm ET.\n"
                             "Join: https://initech.zoom.us/j/91234567890\nMy cell: +1 415 555 0123\n")
    fake.token_file(tmp_path / "tokens" / "g.google.json")
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(fake, tmp_path, email=ME))
    capsys.readouterr()
    assert main(["check", "--format", "json", "--config", str(config), "--now", NOW]) == 1
    (found,) = json.loads(capsys.readouterr().out)["interviews"]
    kinds = {r["kind"]: r for r in found["risks"]}
    assert "no_join_info" not in kinds  # the email's Zoom link counts
    mismatch = kinds["time_mismatch"]
    assert mismatch["severity"] == "critical" and '"2pm ET"' in mismatch["evidence"]
    assert mismatch["evidence"].endswith("but the calendar has it at 22:00; going by the calendar you would be late")
    # The next check reads the facts kept in the state store: no mail is read again.
    fake.reset_counts()
    assert main(["check", "--format", "json", "--config", str(config), "--now", NOW]) == 1
    assert not [r for r in fake.routes_called() if r.startswith("messages.")]
