"""What every draft store promises (providers.base.DraftStore), run over every provider."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest
from harnesses import ME, ORGANIZER, soon

from daemon.core.model import Event, person
from providers.base import Address, Capabilities, DraftFate, DraftMessage, DraftStore, ProviderError
from providers.mime import fingerprint

TEXT = "Dear Rita,\n\nCould we move our interview to another day?\n\nBest regards,\nAlex\n"


def draft(key: str = "a" * 32, text: str = TEXT, subject: str = "Rescheduling our interview") -> DraftMessage:
    return DraftMessage(key=key, sender=Address(ME, "Alex Morgan"), to=(Address(ORGANIZER, "Rita Recruiter"),),
                        subject=subject, text=text)


def test_it_is_a_draft_store_and_declares_what_it_can_do(mailbox: Any) -> None:
    store = mailbox.store()
    assert isinstance(store, DraftStore) and isinstance(store.capabilities, Capabilities)


def test_a_new_draft_is_untouched_and_found_by_its_key(mailbox: Any) -> None:
    store = mailbox.store()
    ref = store.create(draft())
    assert ref.id and ref.fingerprint == fingerprint(TEXT)
    assert store.fate(ref) is DraftFate.UNTOUCHED
    assert mailbox.live_keys() == ["a" * 32]
    found = store.find_by_key("a" * 32)
    assert found is not None and found.id == ref.id
    assert store.fate(found) is DraftFate.UNTOUCHED  # crash recovery carries on from the found ref
    assert store.find_by_key("b" * 32) is None


def test_a_draft_the_user_edited_is_edited_and_its_neighbour_untouched(mailbox: Any) -> None:
    store = mailbox.store()
    mine, other = store.create(draft()), store.create(draft(key="b" * 32, subject="Thank you"))
    mailbox.user_edits(mine, "Hi Rita, my own words entirely.\n")
    if store.capabilities.detects_edits:
        assert store.fate(mine) is DraftFate.EDITED
    assert store.fate(other) is DraftFate.UNTOUCHED


def test_a_sent_draft_is_sent(mailbox: Any) -> None:
    store = mailbox.store()
    ref = store.create(draft())
    mailbox.user_sends(ref)
    expected = {DraftFate.SENT} if store.capabilities.detects_sent else {DraftFate.SENT, DraftFate.DELETED}
    assert store.fate(ref) in expected
    assert mailbox.live_keys() == []
    assert store.find_by_key("a" * 32) is None  # a sent draft is not a live draft


def test_a_discarded_draft_is_deleted(mailbox: Any) -> None:
    store = mailbox.store()
    ref = store.create(draft())
    mailbox.user_deletes(ref)
    assert store.fate(ref) is DraftFate.DELETED
    assert store.find_by_key("a" * 32) is None


def test_update_replaces_the_content_of_the_one_draft(mailbox: Any) -> None:
    store = mailbox.store()
    ref = store.create(draft())
    text = "Dear Rita,\n\nThe interview moved; could we find another time?\n\nAlex\n"
    new = store.update(ref, draft(text=text, subject="New times"))
    assert new.fingerprint == fingerprint(text) != ref.fingerprint
    assert store.fate(new) is DraftFate.UNTOUCHED
    assert mailbox.live_keys() == ["a" * 32]
    found = store.find_by_key("a" * 32)
    assert found is not None and store.fate(found) is DraftFate.UNTOUCHED


def test_update_of_a_draft_the_user_discarded_never_brings_it_back(mailbox: Any) -> None:
    store = mailbox.store()
    ref = store.create(draft())
    mailbox.user_deletes(ref)
    with contextlib.suppress(ProviderError):  # a plain error, or an edit of the copy in the trash
        store.update(ref, draft(text="Another text\n"))
    assert mailbox.live_keys() == []


def test_withdrawing_removes_the_draft_and_tolerates_a_second_try(mailbox: Any) -> None:
    store = mailbox.store()
    ref = store.create(draft())
    store.delete(ref)
    assert mailbox.live_keys() == []
    store.delete(ref)
    assert store.fate(ref) is DraftFate.DELETED
    assert store.find_by_key("a" * 32) is None


def test_text_beyond_ascii_round_trips_untouched(mailbox: Any) -> None:
    store = mailbox.store()
    ref = store.create(draft(text="Chère Zoë,\n\nCould we meet at the café — Thursday 15:00 ✓?\n\nAlex\n",
                             subject="Réunion — nouvelle date"))
    assert store.fate(ref) is DraftFate.UNTOUCHED


def test_no_invitation_means_no_thread(mailbox: Any) -> None:
    event = Event(account="contract", source_id="x/1", title="Technical interview", start=soon(2),
                  end=soon(2) + timedelta(hours=1), organizer=person(ORGANIZER))
    store = mailbox.store()
    assert store.find_thread(event) is None


def test_a_fate_comes_only_from_positive_evidence(mailbox: Any) -> None:
    """Deleted means the store answered "no such draft"; failing to look is an error, never a fate."""
    store = mailbox.store()
    ref = store.create(draft())
    for name, outage in mailbox.outages(ref).items():
        with outage(), pytest.raises(ProviderError):
            fate = store.fate(ref)
            raise AssertionError(f"{name}: fate() answered {fate.value} without evidence")
        assert store.fate(ref) is DraftFate.UNTOUCHED, name  # and once the store answers again, all is as it was
    assert mailbox.live_keys() == ["a" * 32]
