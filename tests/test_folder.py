"""The folder drafts provider: .eml files, fates read from the filesystem."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from daemon.core.model import Event
from providers.base import Address, DraftFate, DraftMessage, DraftRef, DraftStore, ProviderError
from providers.folder import FolderDrafts, slug
from providers.mime import KEY_HEADER, fingerprint, plain_body

NOW = datetime(2025, 3, 26, 9, 30, tzinfo=timezone.utc)
KEY = "0123456789abcdef0123456789abcdef"


def draft(**kw: object) -> DraftMessage:
    base: dict[str, object] = dict(
        key=KEY,
        sender=Address("sam.rivera@example.com", "Sam Rivera"),
        to=(Address("priya.natarajan@acme-corp.example", "Priya Natarajan"), Address("jobs@acme-corp.example")),
        subject="Request to reschedule: Technical interview",
        text="Dear Priya,\n\nI am sorry to ask, but could we move our interview?\n\nThank you,\nSam\n",
    )
    base.update(kw)
    return DraftMessage(**base)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> FolderDrafts:
    return FolderDrafts(tmp_path / "drafts", now=Clock())


def parse(path: Path):  # type: ignore[no-untyped-def]
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def test_it_is_a_draft_store(store: FolderDrafts) -> None:
    assert isinstance(store, DraftStore)


def test_create_writes_an_unsent_message_into_a_new_folder(store: FolderDrafts) -> None:
    assert not store.path.exists()
    ref = store.create(draft())
    path = store.path / ref.id
    assert path.is_file() and ref.id.endswith(".eml")
    assert ref.id.startswith("20250326-093000-01234567-request-to-reschedule")
    assert ref.created == NOW and ref.fingerprint == fingerprint(draft().text)
    msg = parse(path)
    assert msg["X-Unsent"] == "1"
    assert msg[KEY_HEADER] == KEY
    assert [a.addr_spec for a in msg["To"].addresses] == ["priya.natarajan@acme-corp.example", "jobs@acme-corp.example"]
    assert msg["To"].addresses[0].display_name == "Priya Natarajan"
    assert msg["From"].addresses[0].addr_spec == "sam.rivera@example.com"
    assert msg["Subject"] == "Request to reschedule: Technical interview"
    assert msg["Date"].datetime == NOW
    assert plain_body(msg).rstrip("\n") == draft().text.rstrip("\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # personal mail (see test_privacy)
    assert not [p for p in store.path.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_round_trip_create_fate_update_find_delete(store: FolderDrafts) -> None:
    ref = store.create(draft())
    assert store.fate(ref) is DraftFate.UNTOUCHED
    found = store.find_by_key(KEY)
    assert found is not None and found.id == ref.id and found.fingerprint == ref.fingerprint
    assert found.created == NOW
    assert store.find_by_key("f" * 32) is None

    new = draft(text="Dear Priya,\n\nThe interview moved; could we find another time?\n\nSam\n")
    updated = store.update(ref, new)
    assert updated.id == ref.id and updated.fingerprint == fingerprint(new.text)
    assert updated.fingerprint != ref.fingerprint
    assert [p.name for p in store.path.glob("*.eml")] == [ref.id]
    assert "interview moved" in plain_body(parse(store.path / ref.id))
    assert store.fate(updated) is DraftFate.UNTOUCHED
    assert store.fate(ref) is DraftFate.EDITED  # the old fingerprint no longer matches

    store.delete(updated)
    assert not (store.path / ref.id).exists()
    store.delete(updated)  # already gone: fine
    assert store.fate(updated) is DraftFate.DELETED
    assert store.find_by_key(KEY) is None
    with pytest.raises(ProviderError, match="not re-creating"):
        store.update(updated, new)


def test_line_ending_changes_are_not_edits(store: FolderDrafts) -> None:
    ref = store.create(draft())
    path = store.path / ref.id
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n"))  # a client re-saved it with LF
    assert store.fate(ref) is DraftFate.UNTOUCHED


def test_unparsable_file_counts_as_edited(store: FolderDrafts) -> None:
    ref = store.create(draft())
    (store.path / ref.id).write_bytes(b"\x00\xff garbage \x00")
    assert store.fate(ref) is DraftFate.EDITED


def test_sent_under_another_name_is_found_by_key(store: FolderDrafts) -> None:
    ref = store.create(draft())
    (store.path / "sent").mkdir()
    os.replace(store.path / ref.id, store.path / "sent" / "sent-by-me.eml")
    assert store.fate(ref) is DraftFate.SENT


def test_renamed_draft_is_the_users_now(store: FolderDrafts) -> None:
    ref = store.create(draft())
    os.replace(store.path / ref.id, store.path / "my-copy.eml")
    assert store.fate(ref) is DraftFate.EDITED


def test_hostile_subject_and_names_cannot_add_headers(store: FolderDrafts) -> None:
    evil = draft(
        subject="Interview\r\nBcc: spy@evil.example\r\nX-Injected: 1",
        to=(Address("priya@acme.example", "Priya\r\nBcc: other@evil.example"),),
    )
    ref = store.create(evil)
    msg = parse(store.path / ref.id)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert "\n" not in str(msg["Subject"]) and "Interview" in str(msg["Subject"])
    assert [a.addr_spec for a in msg["To"].addresses] == ["priya@acme.example"]
    assert "/" not in ref.id and "\r" not in ref.id


def test_same_second_same_subject_gets_distinct_files(store: FolderDrafts) -> None:
    first = store.create(draft())
    second = store.create(draft())
    assert first.id != second.id
    assert {p.name for p in store.path.glob("*.eml")} == {first.id, second.id}


def test_clock_is_injected(tmp_path: Path) -> None:
    clock = Clock()
    store = FolderDrafts(tmp_path, now=clock)
    clock.now = NOW + timedelta(days=2)
    ref = store.create(draft())
    assert ref.created == NOW + timedelta(days=2) and ref.id.startswith("20250328-")


def test_ids_that_are_paths_are_refused(store: FolderDrafts, tmp_path: Path) -> None:
    outside = tmp_path / "outside.eml"
    outside.write_text("x")
    for bad in ("../outside.eml", "/etc/passwd", "sent/x.eml", ".hidden.eml", ""):
        ref = DraftRef(id=bad, fingerprint="x")
        with pytest.raises(ProviderError):
            store.fate(ref)
        with pytest.raises(ProviderError):
            store.delete(ref)
    assert outside.exists()


def test_symlinks_are_not_followed(store: FolderDrafts, tmp_path: Path) -> None:
    secret = tmp_path / "secret.eml"
    ref = store.create(draft())
    secret.write_bytes((store.path / ref.id).read_bytes())
    (store.path / ref.id).unlink()
    os.symlink(secret, store.path / ref.id)
    # A link planted in the folder is not our draft: not read, not scanned, never written through.
    assert store.fate(ref) is not DraftFate.UNTOUCHED
    assert store.find_by_key(KEY) is None
    with pytest.raises(ProviderError):
        store.update(ref, draft(text="overwrite?"))
    store.delete(ref)
    assert secret.exists() and b"overwrite?" not in secret.read_bytes()


def test_find_thread_is_not_supported(store: FolderDrafts) -> None:
    event = Event(account="a", source_id="x", title="Interview", start=NOW, end=NOW + timedelta(hours=1))
    assert store.find_thread(event) is None


def test_unwritable_folder_is_a_provider_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ProviderError, match="drafts folder|cannot create"):
        FolderDrafts(blocker / "drafts", now=Clock()).create(draft())


def test_slug() -> None:
    assert slug("Réschedule: Interview — Acme/Corp!") == "reschedule-interview-acme-corp"
    assert slug("???") == "draft"
    assert len(slug("x" * 200)) == 40
