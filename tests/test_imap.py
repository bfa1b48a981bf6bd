"""The IMAP draft store against a real Dovecot, through the real imapclient."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import trustme
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError
from servers.dovecot import Dovecot, make_server, remove, unavailable_reason

from daemon.config import parse_config
from daemon.core.model import Event, person
from providers import registry
from providers.base import Address, AuthError, DraftFate, DraftMessage, ProviderError, TransientError
from providers.imap import ImapDraftStore
from providers.mime import KEY_HEADER, parse_message, plain_body
from providers.secret import PasswordError

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")

UTC = timezone.utc
ME = "alex@example.com"
RECRUITER = "rita@acme.example"
PASSWORD_ENV = "SALVAGE_TEST_IMAP_PASSWORD"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def dovecot(ca: trustme.CA) -> Iterator[Dovecot]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pem = Path(os.environ.get("TMPDIR", "/tmp")) / f"salvage-dovecot-cert-{os.getpid()}.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    os.chmod(pem, 0o644)
    server = make_server(pem)
    for i in range(1, 41):  # added before the start: Dovecot caches its passwd-file
        server.add_user(f"user{i}@example.com", "s3cret-app-password")
    server.start()
    yield server
    remove(server)
    pem.unlink(missing_ok=True)


_users = iter(range(1, 41))


@pytest.fixture
def user(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh mailbox per test."""
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-app-password")
    return f"user{next(_users)}@example.com"


def config_text(server: Dovecot, username: str, tmp_path: Path, **drafts: Any) -> str:
    settings = {"host": "127.0.0.1", "port": server.port, "security": "none", "username": username,
                "password_env": PASSWORD_ENV, **drafts}
    lines = "\n".join(f"      {k}: {v}" for k, v in settings.items() if v is not None)
    (tmp_path / "cal.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    return f"""
user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}
accounts:
  - name: mail
    calendar: {{type: ics, path: {tmp_path / 'cal.ics'}}}
    drafts:
      type: imap
{lines}
"""


def store(server: Dovecot, username: str, tmp_path: Path, **drafts: Any) -> ImapDraftStore:
    config = parse_config(config_text(server, username, tmp_path, **drafts))
    mailbox = registry.open_drafts(config.accounts[0], registry.context(config.accounts[0], config))
    assert isinstance(mailbox, ImapDraftStore)
    return mailbox


@pytest.fixture
def mailbox(dovecot: Dovecot, user: str, tmp_path: Path) -> Iterator[ImapDraftStore]:
    box = store(dovecot, user, tmp_path)
    yield box
    box.close()


@pytest.fixture
def client(dovecot: Dovecot, user: str) -> Iterator[IMAPClient]:
    """Another IMAP client: what the user's mail program sees and does."""
    other = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    other.login(user, "s3cret-app-password")
    yield other
    other.logout()


def message(key: str = "k1", text: str = "Dear Rita,\n\nCould we move our interview?\n\nAlex\n",
            in_reply_to: str | None = None, references: tuple[str, ...] = ()) -> DraftMessage:
    return DraftMessage(key=key, sender=Address(ME, "Alex Morgan"), to=(Address(RECRUITER, "Rita Recruiter"),),
                        subject="Rescheduling our interview", text=text, in_reply_to=in_reply_to,
                        references=references)


def drafts_in(client: IMAPClient, folder: str = "Drafts") -> dict[int, dict[bytes, Any]]:
    client.select_folder(folder)
    uids = client.search(["UNDELETED"])
    return client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}


def invitation(message_id: str, subject: str = "Invitation: Interview with Acme", sender: str = RECRUITER) -> bytes:
    return (f"From: Rita Recruiter <{sender}>\r\nTo: {ME}\r\nSubject: {subject}\r\n"
            f"Message-ID: {message_id}\r\nReferences: <older@acme.example>\r\n"
            "Date: Mon, 30 Nov 2026 09:00:00 +0000\r\n\r\nPlease join us.\r\n").encode()


def interview_event(**fields: Any) -> Event:
    start = datetime(2026, 12, 3, 14, tzinfo=UTC)
    values: dict[str, Any] = {"title": "Interview with Acme", "organizer": person(RECRUITER, "Rita Recruiter"),
                              **fields}
    return Event(account="mail", source_id="ev1", start=start, end=start + timedelta(hours=1), **values)


# ---- create and fates ----------------------------------------------------------------------------


def test_create_appends_to_special_use_drafts_with_draft_flag_and_key(mailbox: ImapDraftStore,
                                                                       client: IMAPClient) -> None:
    ref = mailbox.create(message())
    found = drafts_in(client)
    assert list(found) == [int(ref.id)]
    data = found[int(ref.id)]
    assert b"\\Draft" in data[b"FLAGS"]
    msg = parse_message(data[b"BODY[]"])
    assert msg[KEY_HEADER] == "k1"
    assert msg["To"] == "Rita Recruiter <rita@acme.example>"
    assert "Could we move our interview?" in plain_body(msg)
    assert ref.extra["folder"] == "Drafts" and ref.extra["uidvalidity"]
    assert mailbox.fate(ref) is DraftFate.UNTOUCHED
    assert mailbox.find_by_key("k1") is not None and mailbox.find_by_key("other") is None


def test_edited_sent_and_deleted_fates(mailbox: ImapDraftStore, client: IMAPClient) -> None:
    edited, sent, deleted = (mailbox.create(message(key)) for key in ("e", "s", "d"))
    client.select_folder("Drafts")
    # The user's client saves an edit as a new message (same headers) and deletes the old one.
    raw = drafts_in(client)[int(edited.id)][b"BODY[]"].replace(b"Could we move", b"Might we move")
    client.append("Drafts", raw, flags=[b"\\Draft"])
    client.select_folder("Drafts")
    client.delete_messages([int(edited.id)])
    client.expunge()
    client.move([int(sent.id)], "Sent")
    client.delete_messages([int(deleted.id)])
    client.expunge()
    assert mailbox.fate(edited) is DraftFate.EDITED
    assert mailbox.fate(sent) is DraftFate.SENT
    assert mailbox.fate(deleted) is DraftFate.DELETED


def test_update_replaces_the_draft_and_a_crash_between_leaves_one(mailbox: ImapDraftStore,
                                                                 client: IMAPClient) -> None:
    ref = mailbox.create(message())
    new = mailbox.update(ref, message(text="Dear Rita,\n\nThe new time works.\n\nAlex\n"))
    assert new.id != ref.id and new.extra["key"] == "k1"
    found = drafts_in(client)
    assert list(found) == [int(new.id)]
    assert "new time works" in plain_body(parse_message(found[int(new.id)][b"BODY[]"]))
    assert mailbox.fate(new) is DraftFate.UNTOUCHED
    # A crash after the APPEND of an update and before the old copy was deleted: two copies.
    again = message(text="Dear Rita,\n\nAnother time.\n\nAlex\n")
    orphan = mailbox.create(again)
    assert len(drafts_in(client)) == 2
    final = mailbox.update(new, again)  # the state store still holds the old ref
    assert final.id == orphan.id
    assert list(drafts_in(client)) == [int(orphan.id)]
    mailbox.delete(final)
    assert drafts_in(client) == {}
    mailbox.delete(final)  # already gone is fine
    assert mailbox.fate(final) is DraftFate.DELETED


def test_threads_into_the_invitation_by_message_id_then_subject_and_sender(mailbox: ImapDraftStore,
                                                                          client: IMAPClient) -> None:
    client.append("INBOX", invitation("<invite-1@acme.example>"))
    client.append("INBOX", invitation("<other@acme.example>", subject="Newsletter"))
    by_subject = mailbox.find_thread(interview_event())
    assert by_subject is not None
    assert by_subject.message_id == "<invite-1@acme.example>"
    assert by_subject.references == ("<older@acme.example>",)
    assert by_subject.subject == "Invitation: Interview with Acme"
    hinted = mailbox.find_thread(interview_event(thread_hints=(("message_id", "<other@acme.example>"),)))
    assert hinted is not None and hinted.message_id == "<other@acme.example>"
    assert mailbox.find_thread(interview_event(title="Interview with Globex")) is None
    ref = mailbox.create(message(in_reply_to=by_subject.message_id, references=by_subject.references))
    msg = parse_message(drafts_in(client)[int(ref.id)][b"BODY[]"])
    assert msg["In-Reply-To"] == "<invite-1@acme.example>"
    assert msg["References"] == "<older@acme.example> <invite-1@acme.example>"


# ---- failures ------------------------------------------------------------------------------------


def test_wrong_password_is_an_auth_error_naming_the_fix(mailbox: ImapDraftStore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(PasswordError) as info:
        mailbox.find_by_key("k1")
    assert "login refused" in str(info.value) and PASSWORD_ENV in str(info.value)
    assert "wrong" not in str(info.value).replace("is wrong", "")


def test_password_file_must_be_private(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text("s3cret-app-password\n")
    os.chmod(secret, 0o644)
    box = store(dovecot, user, tmp_path, password_env=None, password_file=secret)
    with pytest.raises(PasswordError, match="chmod 600"):
        box.find_by_key("k1")
    os.chmod(secret, 0o600)
    assert box.find_by_key("k1") is None
    box.close()


def test_a_dropped_connection_is_reopened(mailbox: ImapDraftStore, client: IMAPClient) -> None:
    ref = mailbox.create(message())
    assert mailbox._client is not None
    mailbox._client.socket().close()  # the server or a NAT box dropped the idle connection
    assert mailbox.fate(ref) is DraftFate.UNTOUCHED


def test_a_lost_append_answer_does_not_duplicate(mailbox: ImapDraftStore, client: IMAPClient) -> None:
    mailbox.find_by_key("warm-up")
    live = mailbox._client
    assert live is not None
    real = live.append

    def append_then_drop(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # the server stored it...
        live.socket().close()
        raise IMAPClientAbortError("socket error: EOF")  # ...but the answer never arrived

    live.append = append_then_drop  # type: ignore[method-assign]
    ref = mailbox.create(message())
    assert list(drafts_in(client)) == [int(ref.id)]


def test_a_server_restart_mid_pass_is_survived_and_a_down_server_is_transient(
    dovecot: Dovecot, mailbox: ImapDraftStore, client: IMAPClient
) -> None:
    first = mailbox.create(message("a"))
    dovecot.restart()
    second = mailbox.create(message("b"))  # the old connection is dead: reopened once
    assert mailbox.fate(first) is DraftFate.UNTOUCHED
    dovecot.stop()
    try:
        with pytest.raises(TransientError, match="cannot connect|connection lost"):
            mailbox.fate(second)
    finally:
        dovecot.start()
    assert mailbox.fate(second) is DraftFate.UNTOUCHED
    assert mailbox.find_by_key("a") is not None


def test_ten_thousand_drafts(dovecot: Dovecot, mailbox: ImapDraftStore, user: str) -> None:
    filler = [(f"From: {ME}\r\nSubject: Old draft {i}\r\nMessage-ID: <old{i}@example.com>\r\n"
               f"{KEY_HEADER}: old-{i}\r\n\r\nNot ours any more {i}.\r\n").encode() for i in range(10_000)]
    dovecot.write_messages(user, "Drafts", filler, flags="DS")
    started = time.monotonic()
    ref = mailbox.create(message("new"))
    assert mailbox.fate(ref) is DraftFate.UNTOUCHED
    assert mailbox.find_by_key("new") is not None
    assert mailbox.find_by_key("old-9999") is not None
    assert mailbox.find_by_key("missing") is None
    assert time.monotonic() - started < 30  # generous: the point is that it finishes and finds the right one


# ---- TLS, folders, XOAUTH2 ------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_with_a_ca_bundle(dovecot: Dovecot, user: str, tmp_path: Path, ca: trustme.CA,
                                           security: str) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    port = dovecot.tls_port if security == "tls" else dovecot.port
    box = store(dovecot, user, tmp_path, port=port, security=security, ca_bundle=bundle)
    assert box.fate(box.create(message())) is DraftFate.UNTOUCHED
    box.close()
    untrusted = store(dovecot, user, tmp_path, port=port, security=security)
    with pytest.raises(ProviderError, match="not trusted"):
        untrusted.find_by_key("k1")


def test_common_folder_names_when_the_server_marks_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(special_use=False)
    try:
        server.add_user("old@example.com", "pw")
        server.start()
        other = IMAPClient("127.0.0.1", port=server.port, ssl=False)
        other.login("old@example.com", "pw")
        other.create_folder("Entwürfe")
        other.create_folder("Gesendet")
        monkeypatch.setenv(PASSWORD_ENV, "pw")
        box = store(server, "old@example.com", tmp_path)
        ref = box.create(message())
        assert ref.extra["folder"] == "Entwürfe"
        other.select_folder("Entwürfe")
        uid = other.search(["ALL"])
        other.move(uid, "Gesendet")
        assert box.fate(ref) is DraftFate.SENT
        box.close()
        other.logout()
    finally:
        remove(server)


def test_xoauth2_login_uses_the_token_source(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    # Dovecot's passwd-file passdb checks an XOAUTH2 bearer token like a password.
    config = parse_config(config_text(dovecot, user, tmp_path))
    tokens = iter(["bad-token", "still-bad", "s3cret-app-password"])

    class Tokens:  # a TokenSource handing out one token per login
        def token(self, *, force_refresh: bool = False) -> str:
            return next(tokens)

    box = ImapDraftStore(config.accounts[0].drafts, registry.context(config.accounts[0], config),  # type: ignore[arg-type]
                         token=Tokens())
    with pytest.raises(AuthError, match="salvage auth mail"):  # refused, and refused again when refreshed
        box.find_by_key("k1")
    assert box.find_by_key("k1") is None
    box.close()


def test_gmail_xoauth2_with_the_google_sign_in(tmp_path: Path) -> None:
    """auth: xoauth2 takes its token from the account's google: grant, which must cover IMAP."""
    from fakes.google_fake import ALL_SCOPES, GoogleFake

    from providers.google.auth import GMAIL_IMAP

    with GoogleFake() as fake:
        tokens = tmp_path / "tokens" / "gmail.json"
        fake.token_file(tokens, scopes=[*ALL_SCOPES, GMAIL_IMAP], valid_access=True)
        access = json.loads(tokens.read_text())["token"]
        server = make_server()
        try:
            server.add_user("alex@gmail.example", access)  # Dovecot checks the bearer token like a password
            server.start()
            (tmp_path / "cal.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
            text = f"""
user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}
accounts:
  - name: gmail
    calendar: {{type: ics, path: {tmp_path / 'cal.ics'}}}
    drafts: {{type: imap, host: 127.0.0.1, port: {server.port}, security: none, username: alex@gmail.example,
              auth: xoauth2}}
    google: {{token_file: {tokens}, imap_access: IMAP}}
"""
            config = parse_config(text.replace("IMAP", "true"))
            account = config.accounts[0]
            assert registry.auth_kinds(account) == ["google"]  # `salvage auth gmail` signs in to Google
            box = registry.open_drafts(account, registry.context(account, config))
            assert box.fate(box.create(message())) is DraftFate.UNTOUCHED
            box.close()  # type: ignore[attr-defined]
            narrow = tmp_path / "tokens" / "narrow.json"
            fake.token_file(narrow, valid_access=True)  # an older grant, made without imap_access
            config = parse_config(text.replace("IMAP", "true").replace(str(tokens), str(narrow)))
            account = config.accounts[0]
            with pytest.raises(AuthError, match="does not include IMAP access"):
                registry.open_drafts(account, registry.context(account, config)).find_by_key("k1")
            config = parse_config(text.replace("IMAP", "false"))
            with pytest.raises(ProviderError, match="imap_access: true"):
                registry.open_drafts(config.accounts[0], registry.context(config.accounts[0], config))
        finally:
            remove(server)


def test_config_rejects_cleartext_to_a_remote_host_and_missing_passwords(tmp_path: Path) -> None:
    from daemon.config import ConfigError

    base = """
user: {name: A, email: a@example.com, timezone: UTC}
accounts:
  - name: m
    calendar: {type: ics, path: x.ics}
    drafts: {type: imap, host: imap.example.com, username: a, %s}
"""
    with pytest.raises(ConfigError, match="in the clear"):
        parse_config(base % "security: none, password_env: P")
    with pytest.raises(ConfigError, match="exactly one of password_env"):
        parse_config(base % "security: tls")
    assert parse_config(base % "password_env: P").accounts[0].drafts.type == "imap"
