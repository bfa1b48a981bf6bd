"""Outlook drafts through Graph against the loopback HTTPS fake; and `salvage run --once` end to end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fakes.graph_fake import GraphFake, config_text, sign_in

from daemon.config import parse_config
from daemon.mime import fingerprint
from daemon.model import Event, Response, person
from providers.base import Address, DraftFate, DraftMessage, ProviderError
from providers.microsoft import KEY_PROPERTY, GraphClient, GraphDrafts, open_drafts
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
        self.client = GraphClient(config.accounts[0], retry=RetryPolicy(attempts=4, base_seconds=0.01),
                                  sleep=self.sleeps.append)
        self.store: GraphDrafts = open_drafts(config.accounts[0], config, client=self.client)


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


def test_fates_edited_sent_deleted(box: Box, fake: GraphFake) -> None:
    refs = [box.store.create(draft(key=f"{i}" * 32)) for i in range(4)]
    fake.user_edits(refs[0].id, "Hi Jordan, my own words.")
    fake.user_sends(refs[1].id)
    fake.user_deletes(refs[2].id)
    fake.user_deletes(refs[3].id, hard=True)
    assert [box.store.fate(r) for r in refs] == [DraftFate.EDITED, DraftFate.SENT, DraftFate.DELETED, DraftFate.DELETED]
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
    assert box.store.find_by_key("k" * 32) == ref.__class__(ref.id, ref.extra["stored"], None, ref.created,
                                                           {"stored": ref.extra["stored"]})


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


# ---- salvage run --once against the fake ------------------------------------------------------


def seed_interview(fake: GraphFake, start: datetime) -> str:
    event = fake.add_event(
        TITLE, start, start + timedelta(hours=1), organizer=JORDAN,
        attendees=[("Alex Morgan", "alex@example.com", "required", "accepted")],
        body="Scheduled via Greenhouse. Join: https://acme.zoom.us/j/123",
        responseStatus={"response": "accepted", "time": "2026-11-20T10:00:00Z"},
        original_zone="Eastern Standard Time",
    )
    fake.add_event("Quarterly planning", start - timedelta(minutes=30), start + timedelta(hours=1))
    return event


def test_salvage_run_once_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli import main

    start = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    with GraphFake() as fake:
        interview = seed_interview(fake, start)
        invitation = fake.add_invitation(TITLE, JORDAN)
        cfg = tmp_path / "config.yaml"
        cfg.write_text(config_text(fake, tmp_path))
        run = ["run", "--once", "--config", str(cfg), "--now", NOW.isoformat()]

        assert main(["auth", "work", "--config", str(cfg), "--no-browser"]) == 0
        assert "enter the code" in capsys.readouterr().out
        assert (tmp_path / "work.msal.json").stat().st_mode & 0o777 == 0o600

        assert main(run) == 0
        (made,) = fake.drafts()
        assert [r["emailAddress"]["address"] for r in made["toRecipients"]] == [JORDAN[1]]
        assert made["conversationId"] == fake.messages[invitation]["conversationId"]  # a reply to the invite
        assert fake.draft_key(made)
        assert "Quarterly planning" not in made["body"]["content"] + made["subject"]

        fake.reset_counts()
        assert main(run) == 0
        assert [d["id"] for d in fake.drafts()] == [made["id"]]
        assert fake.count("GET", "calendarView/delta") == 1 and fake.count("GET", "startDateTime") == 0
        assert fake.count("POST") == fake.count("PATCH") == fake.count("DELETE") == 0

        # A delta reset, throttling, a 503 and a timeout in one pass: survived, nothing duplicated.
        fake.expire_delta_tokens("410")
        fake.throttle("calendarView/delta", retry_after=1)
        fake.unavailable(f"/me/messages/{made['id']}", method="GET")
        fake.update_event(interview, start=start + timedelta(minutes=30), end=start + timedelta(minutes=90))
        assert main(run) == 0
        (updated,) = fake.drafts()
        assert updated["id"] == made["id"] and updated["body"] != made["body"]

        # A refresh token that stopped working: that account waits for `salvage auth`, nothing is lost.
        fake.fail_refresh = True
        fake.expire_access_tokens()
        main(run)
        assert "salvage auth work" in capsys.readouterr().out
        fake.fail_refresh = False
        assert main(["auth", "work", "--config", str(cfg), "--no-browser"]) == 0
        assert main(run) == 0
        assert [d["id"] for d in fake.drafts()] == [made["id"]]
        assert fake.violations == []
