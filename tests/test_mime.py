from __future__ import annotations

from email import policy
from email.parser import BytesParser

from providers.base import Address, DraftMessage
from providers.mime import KEY_HEADER, build_message, clean_header, fingerprint, plain_body


def draft(**kw: object) -> DraftMessage:
    base = dict(key="k" * 32, sender=Address("alex@example.com", "Alex Morgan"),
                to=(Address("jordan@acme.example", "Jordan Lee"),), subject="Hello", text="Dear Jordan,\n\nThanks.\n")
    base.update(kw)
    return DraftMessage(**base)  # type: ignore[arg-type]


def test_message_headers_and_threading() -> None:
    msg = build_message(draft(in_reply_to="<inv@acme>", references=("<a@acme>",)), unsent=True)
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed[KEY_HEADER] == "k" * 32
    assert parsed["X-Unsent"] == "1"
    assert parsed["In-Reply-To"] == "<inv@acme>"
    assert parsed["References"] == "<a@acme> <inv@acme>"
    assert parsed["To"].addresses[0].display_name == "Jordan Lee"
    assert plain_body(parsed).strip() == "Dear Jordan,\n\nThanks."


def test_hostile_text_cannot_add_headers() -> None:
    evil = "Interview\r\nBcc: spy@evil.example\nX-Other: 1"
    msg = build_message(draft(subject=evil, to=(Address("jordan@acme.example", "Jordan\r\nBcc: x@evil"),)))
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed["Bcc"] is None and parsed["X-Other"] is None
    assert "\n" not in str(parsed["Subject"])
    assert clean_header("a\r\n\tb\x00c") == "a b c"


def test_fingerprint_ignores_line_endings_and_trailing_space() -> None:
    assert fingerprint("a \r\nb\r\n\r\n") == fingerprint("a\nb")
    assert fingerprint("a\nb") != fingerprint("a\nc")


def test_html_alternative() -> None:
    msg = build_message(draft(html="<p>Dear Jordan</p>"))
    assert msg.get_body(preferencelist=("html",)) is not None
    assert plain_body(msg).startswith("Dear Jordan")


def test_long_subjects_survive_a_round_trip_without_a_leading_space() -> None:
    subject = "Request to reschedule our interview: Onsite interview - Stark Industries"
    raw = build_message(draft(subject=subject)).as_bytes()
    assert b"Subject: Request to reschedule" in raw
    assert BytesParser(policy=policy.default).parsebytes(raw)["Subject"] == subject
