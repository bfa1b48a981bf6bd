"""Turning a :class:`DraftMessage` into an RFC 5322 message, and fingerprinting bodies.

Headers are built with the stdlib's ``email.policy.SMTP``-style policy, which refuses CR/LF in
header values, so event text can never inject headers; :func:`clean_header` also folds any
control characters to spaces before they get that far.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from email import policy
from email.headerregistry import Address as EmailAddress
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid

from providers.base import Address, DraftMessage

KEY_HEADER = "X-Salvage-Key"
# Fold only beyond RFC 5322's hard limit: CPython's folder at 78 columns sometimes moves a whole
# Subject onto a continuation line ("Subject:\r\n Request..."), which some parsers read with a
# leading space. Our header values are capped well below 998 characters.
_POLICY = policy.SMTP.clone(max_line_length=998)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


def clean_header(value: str, limit: int = 200) -> str:
    """One line of header text: control characters become spaces, runs of space collapse."""
    text = _CONTROL.sub(" ", value)
    text = re.sub(r"\s{2,}", " ", text).strip()
    return text[:limit]


def _address(addr: Address) -> EmailAddress:
    username, _, domain = addr.email.partition("@")
    return EmailAddress(display_name=clean_header(addr.name, 100), username=username, domain=domain)


def build_message(draft: DraftMessage, *, date: datetime | None = None, unsent: bool = False) -> EmailMessage:
    """The RFC 5322 message for a draft: From/To/Subject, threading headers, X-Salvage-Key, body."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = _address(draft.sender)
    msg["To"] = [_address(a) for a in draft.to]
    if draft.cc:
        msg["Cc"] = [_address(a) for a in draft.cc]
    msg["Subject"] = clean_header(draft.subject, 250)
    if date is not None:
        msg["Date"] = format_datetime(date)
    domain = draft.sender.email.partition("@")[2] or "salvage.invalid"
    msg["Message-ID"] = make_msgid(idstring="salvage", domain=domain)
    if draft.in_reply_to:
        msg["In-Reply-To"] = clean_header(draft.in_reply_to, 998)
        refs = [clean_header(r, 998) for r in draft.references if r]
        if draft.in_reply_to not in refs:
            refs.append(clean_header(draft.in_reply_to, 998))
        msg["References"] = " ".join(refs)
    msg[KEY_HEADER] = draft.key
    if unsent:
        msg["X-Unsent"] = "1"  # Outlook / Thunderbird open such a file as an editable draft
    msg.set_content(draft.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if draft.html is not None:
        msg.add_alternative(draft.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw RFC 5322 bytes into an :class:`EmailMessage`."""
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def plain_body(msg: Message) -> str:
    """The text/plain body of a message ('' if none), with ``\n`` line endings."""
    text = ""
    if isinstance(msg, EmailMessage):
        part = msg.get_body(preferencelist=("plain",))
        if part is not None and isinstance(part, EmailMessage):
            text = str(part.get_content())
    else:
        payload = msg.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return text.replace("\r\n", "\n")


def fingerprint(text: str) -> str:
    """A hash of body text that ignores line-ending and trailing-space differences.

    Mail servers re-wrap and re-encode; what matters is whether the words changed.
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    normal = "\n".join(lines).strip("\n")
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()[:24]
