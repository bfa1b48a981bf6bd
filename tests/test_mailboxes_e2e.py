"""`salvage run --once` on the example's caldav + imap account, against a real Radicale and Dovecot.

What the user's mail program sees is read with a separate IMAP client; the organizer's changes are
made with plain CalDAV requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from imapclient import IMAPClient
from servers import dovecot as dovecot_server
from servers import radicale as radicale_server

from daemon.core.model import DraftState
from daemon.engine.state import StateStore
from providers.mime import KEY_HEADER, parse_message, plain_body

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(dovecot_server.unavailable_reason() is not None,
                       reason=dovecot_server.unavailable_reason() or ""),
]

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-24T09:00:00Z"
ME = "alex@example.com"
ACME = "jordan.lee@acme-robotics.example"
WAYNE = "lucius.fox@wayne.example"
PASSWORD = "app-password-123"
ENV = "FASTMAIL_APP_PASSWORD"  # the name the example config uses


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setenv(ENV, PASSWORD)
    imap = dovecot_server.make_server()
    imap.add_user(ME, PASSWORD)
    cal = radicale_server.make_server()
    cal.add_user(ME, PASSWORD)
    try:
        imap.start()
        cal.start()
        yield cal, imap
    finally:
        dovecot_server.remove(imap)
        radicale_server.remove(cal)


def interview(uid: str, title: str, start: str, end: str, organizer: str, name: str, extra: str = "") -> str:
    return radicale_server.vevent(uid, title, start, end, organizer=organizer, attendee=ME, extra=extra).replace(
        "CN=Rita Recruiter", f"CN={name}")


def write_config(tmp_path: Path, cal: Any, imap: Any) -> Path:
    """The example's `fastmail` account, pointed at the local servers."""
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    account = next(a for a in example["accounts"] if a["name"] == "fastmail")
    account["enabled"] = True
    account["calendar"].update(url=cal.url, username=ME)
    account["drafts"].update(host="127.0.0.1", port=imap.port, security="none", username=ME)
    config = {"user": {"name": "Alex Morgan", "email": ME, "timezone": "Europe/London"},
              "state": {"path": str(tmp_path / "state.sqlite3")}, "accounts": [account]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def drafts(client: IMAPClient, folder: str = "Drafts") -> dict[str, tuple[int, Any, tuple[bytes, ...]]]:
    """What a mail program sees in a folder: X-Salvage-Key → (UID, message, flags)."""
    client.select_folder(folder)
    uids = client.search(["UNDELETED"])
    found = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
    out = {}
    for uid, data in found.items():
        msg = parse_message(data[b"BODY[]"])
        out[str(msg[KEY_HEADER])] = (uid, msg, tuple(data[b"FLAGS"]))
    return out


def by_recipient(found: dict[str, tuple[int, Any, tuple[bytes, ...]]], address: str) -> tuple[str, int, Any]:
    (key, (uid, msg, _flags)), = [(k, v) for k, v in found.items() if address in str(v[1]["To"])]
    return key, uid, msg


def test_run_once_against_radicale_and_dovecot(servers: tuple[Any, Any], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.cli import main

    cal, imap = servers
    calendar = cal.make_calendar(ME, "calendar", "Calendar")
    cal.put(ME, calendar, "iv1", interview("iv1", "Technical interview - Acme Robotics", "20261125T140000Z",
                                           "20261125T150000Z", ACME, "Jordan Lee",
                                           "LOCATION:https://acme.zoom.us/j/123456789\r\n"))
    cal.put(ME, calendar, "dentist", radicale_server.vevent("dentist", "Dentist", "20261125T133000Z",
                                                            "20261125T143000Z", organizer=ME, attendee=ME))
    cal.put(ME, calendar, "iv2", interview("iv2", "Video interview - Wayne Enterprises", "20261125T163000Z",
                                           "20261125T171500Z", WAYNE, "Lucius Fox"))
    client = IMAPClient("127.0.0.1", port=imap.port, ssl=False)
    client.login(ME, PASSWORD)
    client.append("INBOX", (
        f"From: Jordan Lee <{ACME}>\r\nTo: {ME}\r\nMessage-ID: <inv1@acme-robotics.example>\r\n"
        "Subject: Invitation: Technical interview - Acme Robotics @ Wed 25 Nov 2026 2pm - 3pm (GMT)\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nYou are invited.\r\n").encode())
    config = write_config(tmp_path, cal, imap)
    run = ["run", "--once", "--config", str(config), "--now", NOW]

    # First pass: two drafts in Drafts, flagged \Draft; the Acme one is a reply to the invitation.
    assert main(run) == 0
    first = drafts(client)
    assert len(first) == 2 and all(b"\\Draft" in flags for _uid, _msg, flags in first.values())
    acme_key, acme_uid, acme = by_recipient(first, ACME)
    assert acme["In-Reply-To"] == "<inv1@acme-robotics.example>"
    assert acme["Subject"].startswith("Re: Invitation: Technical interview - Acme Robotics")
    assert "Dentist" not in plain_body(acme) and "14:00" in plain_body(acme)
    wayne_key, wayne_uid, _wayne = by_recipient(first, WAYNE)

    # Second pass: nothing new, nothing rewritten.
    assert main(run) == 0
    assert {k: v[0] for k, v in drafts(client).items()} == {k: v[0] for k, v in first.items()}

    # The user deletes the Wayne draft: it never comes back.
    client.select_folder("Drafts")
    client.delete_messages([wayne_uid])
    client.expunge()
    assert main(run) == 0
    assert main(run) == 0
    assert wayne_key not in drafts(client)

    # The organizer moves the interview (still clashing): the untouched draft is updated, one copy.
    cal.put(ME, calendar, "iv1", interview("iv1", "Technical interview - Acme Robotics", "20261125T141500Z",
                                           "20261125T151500Z", ACME, "Jordan Lee",
                                           "LOCATION:https://acme.zoom.us/j/123456789\r\n"))
    assert main(run) == 0
    now_there = drafts(client)
    assert list(now_there) == [acme_key]
    moved_uid, moved, _flags = now_there[acme_key]
    assert moved_uid != acme_uid and "14:15" in plain_body(moved)
    assert moved["In-Reply-To"] == "<inv1@acme-robotics.example>"

    # A wrong password: a clear status, the drafts left as they are, nothing duplicated.
    monkeypatch.setenv(ENV, "wrong")
    assert main(run) != 0
    with StateStore.open(tmp_path / "state.sqlite3") as store:
        status = store.account_status("fastmail")
        assert status is not None and status.error and ENV in status.error
        assert not status.needs_auth  # `salvage auth` cannot fix a password: retried at the next poll
    monkeypatch.setenv(ENV, PASSWORD)
    assert main(run) == 0
    assert list(drafts(client)) == [acme_key]

    # The user sends the draft (their client moves it to Sent): recorded as sent, never re-drafted.
    client.select_folder("Drafts")
    client.move([moved_uid], "Sent")
    assert main(run) == 0
    assert main(run) == 0
    assert drafts(client) == {}
    with StateStore.open(tmp_path / "state.sqlite3") as store:
        states = {r.key: r.state for r in store.drafts()}
    assert states[acme_key] is DraftState.SENT and states[wayne_key] is DraftState.DELETED
    client.logout()
