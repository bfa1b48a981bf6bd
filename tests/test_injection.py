"""Header and recipient injection is impossible by construction (issue 8, item 1).

Hostile calendar text goes through the real pipeline (ics → plan → render → folder), and the
checking layer in :mod:`providers.mime` is shown to refuse a message the mail library got wrong.
"""

from __future__ import annotations

import logging
import shutil
import unicodedata
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from importlib import resources
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.cli.commands import DEMO_NOW, open_engine
from daemon.cli.common import parse_now
from daemon.config import load_config
from daemon.core.text import (
    address_problem,
    decode_encoded_words,
    display_name,
    msg_id,
    one_line,
    strip_invisible,
)
from providers.base import Address, DraftMessage
from providers.mime import (
    ALLOWED_HEADERS,
    UnsafeDraft,
    build_message,
    message_bytes,
    raw_addr_specs,
    verify_message,
)

SAMPLE = resources.files("daemon.sample")

# Each line: (text in the bundled demo calendar, hostile replacement).
HOSTILE = [
    ("SUMMARY:Technical interview - Acme Robotics",
     "SUMMARY:Technical interview =?utf-8?q?Acme=0D=0ABcc:_spy=40evil.example=0D=0A=0D=0Ainjected?="),
    ("ORGANIZER;CN=Jordan Lee:mailto:jordan.lee@acme-robotics.example",
     'ORGANIZER;CN="=?utf-8?q?Jordan_=3Cboss=40acme.example=3E=0D=0ABcc:_x=40evil.example?=":'
     "mailto:jordan.lee@acme-robotics.example"),
    ("ORGANIZER;CN=Lucius Fox:mailto:lucius.fox@wayne.example",
     "ORGANIZER;CN=Lucius Fox:mailto:lucius.fox@wayne.example,spy@evil.example"),
    ("ORGANIZER;CN=Dana Kim:mailto:dana.kim@umbrella-health.example",
     "ORGANIZER;CN=Dana Kim:mailto:dana.kim@umbrella-health.example%00%0D%0ABcc:spy@evil.example"),
    ("ORGANIZER;CN=Pepper Potts:mailto:recruiting@stark.example",
     "ORGANIZER;CN=Pepper\u202e\u200bPotts:mailto:recruiting@stark.example"),
]


def _hostile_demo(tmp_path: Path) -> Path:
    text = (SAMPLE / "demo.ics").read_text()
    for old, new in HOSTILE:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "demo.ics").write_text(text)
    (tmp_path / "config.yaml").write_text((SAMPLE / "demo.yaml").read_text() + "state:\n  path: state.sqlite3\n")
    return tmp_path / "config.yaml"


def _header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if not line[:1].isspace()]


def test_hostile_calendar_text_cannot_add_recipients_or_headers(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = _hostile_demo(tmp_path)
    assert main(["run", "--once", "--config", str(config), "--now", DEMO_NOW]) == 0
    files = sorted((tmp_path / "drafts").glob("*.eml"))
    recipients = set()
    for path in files:
        raw = path.read_bytes()
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        names = _header_names(raw)
        assert set(names) <= ALLOWED_HEADERS and len(names) == len(set(names)), names
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert b"\nbcc" not in head.lower() and b"boss@" not in head
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert parsed["X-Salvage-Key"] and parsed["Bcc"] is None
        assert not any(ch in str(parsed["Subject"]) for ch in "\r\n\x00")  # the decoded text is only text
        for address in parsed["To"].addresses:
            recipients.add(address.addr_spec)
            assert "@" not in address.display_name and "\u202e" not in address.display_name
    # The comma-smuggled and the NUL-carrying organizers get no draft at all, and a warning each.
    assert recipients == {"priya.shah@hooli.example", "jordan.lee@acme-robotics.example", "talent@globex.example",
                          "recruiting@stark.example"}
    warnings = [line for line in capsys.readouterr().err.splitlines() if " WARNING " in line]
    assert any("lucius.fox@wayne.example,spy@evil.example" in w and "refused" in w for w in warnings), warnings
    assert any("dana.kim@umbrella-health.example" in w and "refused" in w for w in warnings), warnings
    assert len(warnings) == 2 and all("\x00" not in w for w in warnings)


def _draft(**kw: object) -> DraftMessage:
    base: dict[str, object] = dict(key="k" * 32, sender=Address("alex@example.com", "Alex Morgan"),
                                   to=(Address("jordan@acme.example", "Jordan Lee"),), subject="Hello", text="Hi\n")
    base.update(kw)
    return DraftMessage(**base)  # type: ignore[arg-type]


def _intent(draft: DraftMessage) -> dict[str, object]:
    msg = build_message(draft)
    return dict(names=list(msg.keys()), sender=draft.sender, to=list(draft.to), cc=[], subject=draft.subject,
                key=draft.key)


@pytest.mark.parametrize("mutate", [
    lambda raw: raw.replace(b"\r\nSubject:", b"\r\nBcc: spy@evil.example\r\nSubject:"),
    lambda raw: raw.replace(b"To: Jordan Lee <jordan@acme.example>", b"To: Jordan Lee <jordan@acme.example>, x@y.example"),
    lambda raw: raw.replace(b"To: Jordan Lee <jordan@acme.example>", b'To: "Jordan" <spy@evil.example>'),
    lambda raw: raw.replace(b"Subject: Hello", b"Subject: Hello\r\n\r\nbody"),
    lambda raw: raw.replace(b"Subject: Hello", b"Subject: Hello\nBcc: spy@evil.example"),
    lambda raw: raw.replace(b"Subject: Hello", b"Subject: =?utf-8?q?Hello=0D=0ABcc:_x?="),
    lambda raw: raw.replace(b"Subject: Hello", b"Subject: " + b"x" * 1000),
    lambda raw: raw.replace(b"X-Salvage-Key: " + b"k" * 32, b"X-Salvage-Key: other"),
])
def test_the_read_back_refuses_any_difference(mutate: object) -> None:
    draft = _draft()
    raw = message_bytes(draft)
    verify_message(raw, **_intent(draft))  # type: ignore[arg-type]
    assert callable(mutate)
    with pytest.raises(UnsafeDraft, match="refusing the draft"):
        verify_message(mutate(raw), **_intent(draft))  # type: ignore[arg-type]


def test_an_interpreter_that_folds_wrongly_gets_the_draft_refused_and_logged_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Simulate the unpatched email folder (a decoded CR/LF written raw): no file, one warning per engine."""
    real = EmailMessage.as_bytes

    def broken(self: EmailMessage, *args: object, **kwargs: object) -> bytes:
        return real(self, *args, **kwargs).replace(b"\r\nSubject:", b"\r\nBcc: spy@evil.example\r\nSubject:")

    monkeypatch.setattr(EmailMessage, "as_bytes", broken)
    shutil.copy(str(SAMPLE / "demo.ics"), tmp_path / "demo.ics")
    (tmp_path / "config.yaml").write_text((SAMPLE / "demo.yaml").read_text() + "state:\n  path: s.sqlite3\n")
    config = load_config(tmp_path / "config.yaml")
    now = parse_now(DEMO_NOW)
    with open_engine(config) as engine, caplog.at_level(logging.WARNING, logger="salvage.daemon.engine.pipeline"):
        first = engine.run_once(now)
        second = engine.run_once(now)
    assert not list((tmp_path / "drafts").glob("*.eml"))
    assert {o.result for o in first.outcomes + second.outcomes} == {"failed"}
    refusals = [r for r in caplog.records if "refusing the draft" in r.getMessage()]
    assert len(refusals) == len(first.outcomes) == 6  # once per draft, not again on the second pass


# ---- the pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize("address", [
    "a@b.example,c@d.example", "a@b.example c@d.example", "a@b.example\x00", "a\r\n@b.example", "a@b.example\u202e",
    "<a@b.example>", "A <a@b.example>", '"a"@b.example', "a@[127.0.0.1]", "a@localhost", "a@b..example",
    "a@-b.example", "=?utf-8?q?a?=@b.example", "a@@b.example", "a@b.example;c", "a(comment)@b.example",
    "j\u00f6rg@b.example", "x" * 65 + "@b.example", "a@" + "b" * 64 + ".example", "a@" + ("b" * 60 + ".") * 5 + "com",
    "a@1.2.3.4", "", ".a@b.example", "a.@b.example",
])
def test_addresses_are_checked_strictly(address: str) -> None:
    assert address_problem(address) is not None


@pytest.mark.parametrize("address", ["jordan.lee@acme-robotics.example", "a+tag@b.co", "o'brien@x.example",
                                     "x" * 64 + "@b.example", "a@xn--bcher-kva.example"])
def test_ordinary_addresses_pass(address: str) -> None:
    assert address_problem(address) is None


def test_encoded_words_are_decoded_then_defused() -> None:
    assert decode_encoded_words("=?utf-8?q?a=0D=0Ab?=") == "a\r\nb"
    assert decode_encoded_words("=?UTF-8?B?SsO2cmc=?= =?utf-8?q?_L?=") == "Jörg L"
    nested = "=?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3D0D=3D0Ay=3F=3D?="  # an encoded-word that decodes to another
    assert one_line(nested) == "x y"
    assert one_line("=?bogus-charset?q?x?= =?utf-8?q?broken") == "= ?bogus-charset?q?x?= = ?utf-8?q?broken"
    assert "=?" not in one_line("==??=?=?=?")
    assert one_line("a\u2028b\u202ec\x85d\ud800e") == "a b c d e"


def test_display_names_that_carry_an_address_are_dropped() -> None:
    assert display_name("Jordan <boss@acme.example>") == ""
    assert display_name("=?utf-8?q?boss=40acme.example?=") == ""
    assert display_name('Doe, "Jane" \\ x') == "Doe, 'Jane' / x"


def test_message_ids_are_plain_tokens() -> None:
    assert msg_id(" <a@b> ") == "<a@b>"
    for bad in ("<a b@c>", "<a@b>\r\nBcc: x", "<=?utf-8?q?a?=>", "a@b", "<a<b>", "<" + "x" * 300 + ">"):
        assert msg_id(bad) is None


def test_threading_ids_from_a_hostile_invitation_are_dropped_not_written() -> None:
    msg = build_message(_draft(in_reply_to="<=?utf-8?q?a=0D=0ABcc:_x@y?=>", references=("<ok@acme>",)))
    assert msg["In-Reply-To"] is None and msg["References"] is None
    msg = build_message(_draft(in_reply_to="<inv@acme>", references=tuple(f"<r{i}@acme>" for i in range(50))))
    assert len(str(msg["References"]).split()) == 20 and str(msg["References"]).endswith("<inv@acme>")


def test_raw_address_reader() -> None:
    assert raw_addr_specs('"Doe, J" <j@x.example>, k@y.example (Kay)') == ["j@x.example", "k@y.example"]
    for bad in ("a <b@x> <c@y>", 'x "unterminated <a@b>', "evil@x <a@b>", "group: a@b;"):
        with pytest.raises(UnsafeDraft):
            raw_addr_specs(bad)


def test_the_invisible_list_matches_unicode_format_characters() -> None:
    missing = [hex(c) for c in range(0x110000)
               if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp") and strip_invisible(chr(c)) not in ("", " ")]
    assert missing == []
    assert strip_invisible("a\x1b[31mred\x1b[0m\x1b]0;title\x07b\x9b2Jc") == "aredbc"
