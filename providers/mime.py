"""Turning a :class:`DraftMessage` into an RFC 5322 message, checking it, and fingerprinting bodies.

Event and mailbox text is hostile until proven otherwise, and the interpreter's ``email`` package
cannot be trusted with it (releases of 3.11 decode ``=?utf-8?q?=0D=0A?=`` in a header value into a
real line break when folding). So safety is built in three layers, none relying on the library:

1. every header value is neutralised first (:func:`daemon.core.text.one_line`: no controls, no
   encoded-word left to decode), every address is checked strictly
   (:func:`daemon.core.text.address_problem`), threading ids must be plain ``<id>`` tokens;
2. the message is built and serialised;
3. the bytes are read back, once by a small parser here that knows nothing of the ``email``
   package and once by the library, and the header names, the recipients, the subject and the
   key must be exactly what was intended, with no line over 998 octets. Anything else raises
   :class:`UnsafeDraft` and the draft is not written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from email import policy
from email.headerregistry import Address as EmailAddress
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from typing import Any

from daemon.core.text import (
    address_problem,
    decode_encoded_words,
    display_name,
    is_one_line,
    msg_id,
    one_line,
)
from providers.base import Address, DraftMessage, ProviderError

KEY_HEADER = "X-Salvage-Key"
# Fold only beyond RFC 5322's hard limit: CPython's folder at 78 columns sometimes moves a whole
# Subject onto a continuation line ("Subject:\r\n Request..."), which some parsers read with a
# leading space. Our header values are capped well below 998 characters.
_POLICY = policy.SMTP.clone(max_line_length=998)
MAX_LINE = 998  # octets, without the CRLF (RFC 5322 2.1.1)
MAX_REFERENCES = 20
_KEY = re.compile(r"[A-Za-z0-9._-]{1,200}")
_FIELD_NAME = re.compile(rb"[!-9;-~]{1,76}")
_WS = re.compile(r"\s+")
_MIME_HEADERS = ("Content-Type", "Content-Transfer-Encoding", "MIME-Version")
ALLOWED_HEADERS = frozenset(
    {"From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References", KEY_HEADER, "X-Unsent",
     *_MIME_HEADERS}
)


class UnsafeDraft(ProviderError):
    """A built draft is not exactly what was intended (an address, a header, a line): not written."""


def clean_header(value: str, limit: int = 200) -> str:
    """One line of header text: see :func:`daemon.core.text.one_line`."""
    return one_line(value, limit)


def _checked(addr: Address, role: str) -> Address:
    problem = address_problem(addr.email)
    if problem:
        raise UnsafeDraft(f"refusing the draft: the {role} address {one_line(addr.email, 80)!r} is unsafe: {problem}")
    return Address(addr.email, display_name(addr.name))


def _thread_ids(draft: DraftMessage) -> tuple[str | None, list[str]]:
    """In-Reply-To and References that are plain message ids; anything else is dropped."""
    reply = msg_id(draft.in_reply_to or "")
    refs: list[str] = []
    for ref in (*draft.references, reply or ""):
        good = msg_id(ref)
        if good and good not in refs:
            refs.append(good)
    return reply, refs[-MAX_REFERENCES:] if reply else []


def _email_address(addr: Address) -> EmailAddress:
    username, _, domain = addr.email.partition("@")
    return EmailAddress(display_name=addr.name, username=username, domain=domain)


def build_message(draft: DraftMessage, *, date: datetime | None = None, unsent: bool = False) -> EmailMessage:
    """The RFC 5322 message for a draft, already checked (raises :class:`UnsafeDraft`)."""
    return checked_message(draft, date=date, unsent=unsent)[0]


def message_bytes(draft: DraftMessage, *, date: datetime | None = None, unsent: bool = False,
                  readable: bool = False) -> bytes:
    """The checked bytes of a draft's message: what goes into a file or a Gmail ``raw``."""
    return checked_message(draft, date=date, unsent=unsent, readable=readable)[1]


def body_encoding(*bodies: str | None, readable: bool) -> str:
    """``8bit`` (plain UTF-8 that `cat` shows as written) when asked for and every line fits in
    RFC 5322's 998 octets; quoted-printable otherwise."""
    if readable and all(
        len(line.encode("utf-8")) <= MAX_LINE for body in bodies if body is not None for line in body.splitlines()
    ):
        return "8bit"
    return "quoted-printable"


def checked_message(draft: DraftMessage, *, date: datetime | None = None,
                    unsent: bool = False, readable: bool = False) -> tuple[EmailMessage, bytes]:
    """The message and exactly the bytes that were checked (raises :class:`UnsafeDraft`).

    ``readable`` writes the bodies as 8-bit UTF-8 where they fit (files a person may read in a terminal)."""
    sender = _checked(draft.sender, "sender")
    to = [_checked(a, "recipient") for a in draft.to]
    cc = [_checked(a, "cc") for a in draft.cc]
    if not to:
        raise UnsafeDraft("refusing the draft: it has no recipient")
    subject = one_line(draft.subject, 250)
    reply, refs = _thread_ids(draft)
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = _email_address(sender)
    msg["To"] = [_email_address(a) for a in to]
    if cc:
        msg["Cc"] = [_email_address(a) for a in cc]
    msg["Subject"] = subject
    if date is not None:
        msg["Date"] = format_datetime(date)
    msg["Message-ID"] = make_msgid(idstring="salvage", domain=sender.email.partition("@")[2])
    if reply:
        msg["In-Reply-To"] = reply
        msg["References"] = " ".join(refs)
    key = draft.key
    if not _KEY.fullmatch(key):
        raise UnsafeDraft(f"refusing the draft: its key {one_line(key, 40)!r} is not a plain token")
    msg[KEY_HEADER] = key
    if unsent:
        msg["X-Unsent"] = "1"  # Outlook / Thunderbird open such a file as an editable draft
    cte = body_encoding(draft.text, draft.html, readable=readable)
    msg.set_content(draft.text, subtype="plain", charset="utf-8", cte=cte)
    if draft.html is not None:
        msg.add_alternative(draft.html, subtype="html", charset="utf-8", cte=cte)
    raw = msg.as_bytes()
    verify_message(raw, names=list(msg.keys()), sender=sender, to=to, cc=cc, subject=subject, key=key)
    return msg, raw



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

# ---- reading the bytes back ---------------------------------------------------------------------


def _refuse(why: str) -> UnsafeDraft:
    return UnsafeDraft(f"refusing the draft: the built message is not what was intended: {why}")


def _raw_fields(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of ``raw``, unfolded, read without the ``email`` package."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        raise _refuse("no end of the header section")
    for number, line in enumerate(raw.split(b"\r\n"), 1):
        if len(line) > MAX_LINE:
            raise _refuse(f"line {number} is longer than {MAX_LINE} octets")
    head = raw[:end]
    lines = head.split(b"\r\n")
    if any(b"\r" in line or b"\n" in line or b"\0" in line for line in lines):
        raise _refuse("a bare CR, LF or NUL in the header section")
    if not head.isascii():
        raise _refuse("8-bit bytes in the header section")
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise _refuse("the header section starts with a continuation line")
            last, text = fields[-1]
            fields[-1] = (last, text + line.decode("ascii"))
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise _refuse(f"a line that is not a header field: {line[:40]!r}")
        fields.append((name.decode("ascii"), value.decode("ascii")))
    return fields


def raw_addr_specs(value: str) -> list[str]:
    """The addr-specs of an address-list header value, by a small RFC 5322 tokenizer of our own.

    Quoted strings and comments are skipped, each list member must be either ``phrase <addr>`` or a
    bare address; anything else (groups, two angle addresses, an '@' in a bare phrase) is refused.
    """
    specs: list[str] = []
    angles: list[str] = []
    bare: list[str] = []
    quoted = escape = False
    depth = 0
    angle: list[str] | None = None

    def finish() -> None:
        phrase = "".join(bare).strip()
        if angles:
            if len(angles) != 1 or any(ch in phrase for ch in "@:;"):
                raise _refuse(f"an address list member is not 'name <address>': {value[:80]!r}")
            specs.append(angles[0].strip())
        elif phrase:
            if address_problem(phrase):
                raise _refuse(f"an address list member is not an address: {phrase[:80]!r}")
            specs.append(phrase)
        angles.clear()
        bare.clear()

    for ch in value:
        if escape:
            escape = False
        elif quoted:
            escape, quoted = ch == "\\", ch != '"'
        elif depth:
            escape = ch == "\\"
            depth += (ch == "(") - (ch == ")")
        elif angle is not None:
            if ch == "<":
                raise _refuse("a '<' inside an angle address")
            if ch == ">":
                angles.append("".join(angle))
                angle = None
            else:
                angle.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth = 1
        elif ch == "<":
            angle = []
        elif ch == ",":
            finish()
        else:
            bare.append(ch)
    if quoted or depth or angle is not None or escape:
        raise _refuse(f"an unterminated quote, comment or angle address: {value[:80]!r}")
    finish()
    return specs


def _same(a: str, b: str) -> bool:
    return _WS.sub(" ", a).strip() == _WS.sub(" ", b).strip()


def verify_message(
    raw: bytes,
    *,
    names: Sequence[str],
    sender: Address,
    to: Sequence[Address],
    cc: Sequence[Address],
    subject: str,
    key: str,
) -> None:
    """Read ``raw`` back twice (our own reader, then the library's) and compare with the intent.

    Raises :class:`UnsafeDraft` on any difference: other header names, other or more recipients,
    another subject or key, a line over 998 octets, a bare line break in the headers.
    """
    fields = _raw_fields(raw)
    found = [name for name, _ in fields]
    if [n.lower() for n in found] != [n.lower() for n in names]:
        raise _refuse(f"header fields {found} instead of {list(names)}")
    unknown = {n.lower() for n in found} - {n.lower() for n in ALLOWED_HEADERS}
    if unknown:
        raise _refuse(f"unexpected header fields {sorted(unknown)}")
    intended = {"from": [sender], "to": list(to), "cc": list(cc)}
    values = {name.lower(): value for name, value in fields}
    for header, people in intended.items():
        if header not in values:
            if people:
                raise _refuse(f"no {header.capitalize()} field")
            continue
        specs = [s.lower() for s in raw_addr_specs(values[header])]
        if specs != [p.email.lower() for p in people]:
            raise _refuse(f"{header.capitalize()} addresses {specs} instead of {[p.email for p in people]}")
    if not _same(decode_encoded_words(values.get("subject", ""), rounds=1), subject):
        raise _refuse("the Subject reads differently")
    if values.get(KEY_HEADER.lower(), "").strip() != key:
        raise _refuse(f"the {KEY_HEADER} field is not the draft's key")

    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    if [n.lower() for n in parsed.keys()] != [n.lower() for n in names]:
        raise _refuse(f"the mail library reads header fields {parsed.keys()}")
    for header, people in intended.items():
        field = parsed.get(header)
        got = list(getattr(field, "addresses", ())) if field is not None else []
        if [a.addr_spec.lower() for a in got] != [p.email.lower() for p in people]:
            raise _refuse(f"the mail library reads {header.capitalize()} as {[a.addr_spec for a in got]}")
        if not all(_same(a.display_name, p.name) for a, p in zip(got, people, strict=True)):
            raise _refuse(f"the mail library reads other display names in {header.capitalize()}")
    if not _same(str(parsed.get("Subject", "")), subject):
        raise _refuse("the mail library reads the Subject differently")
    if str(parsed.get(KEY_HEADER, "")).strip() != key:
        raise _refuse(f"the mail library reads another {KEY_HEADER}")


# ---- Microsoft Graph's JSON message -------------------------------------------------------------

GRAPH_FIELDS = frozenset(
    {"subject", "body", "toRecipients", "ccRecipients", "internetMessageHeaders", "singleValueExtendedProperties"}
)


def graph_recipients(addresses: Iterable[Address], role: str = "recipient") -> list[dict[str, Any]]:
    """Graph ``recipient`` objects for checked addresses with neutralised names."""
    out: list[dict[str, Any]] = []
    for addr in addresses:
        checked = _checked(addr, role)
        entry: dict[str, Any] = {"address": checked.email}
        if checked.name:
            entry["name"] = checked.name
        out.append({"emailAddress": entry})
    return out


def verify_graph_message(message: dict[str, Any], draft: DraftMessage) -> None:
    """Read a Graph message body back from its JSON and compare it with the draft's intent.

    The same promise as :func:`verify_message`: the recipients are the draft's and no one else,
    the subject is one neutral line, the only internet header is the key; else :class:`UnsafeDraft`.
    """
    payload = json.loads(json.dumps(message))
    extra = set(payload) - GRAPH_FIELDS
    if extra:
        raise _refuse(f"unexpected message properties {sorted(extra)}")
    subject = payload.get("subject", "")
    if not isinstance(subject, str) or not is_one_line(subject) or len(subject.encode()) > MAX_LINE - 10:
        raise _refuse("the subject is not one neutral line")
    for field, people in (("toRecipients", draft.to), ("ccRecipients", draft.cc)):
        entries = payload.get(field, [])
        if not isinstance(entries, list):
            raise _refuse(f"{field} is not a list")
        addresses = [str((e.get("emailAddress") or {}).get("address", "")) for e in entries if isinstance(e, dict)]
        if len(addresses) != len(entries) or [a.lower() for a in addresses] != [p.email.lower() for p in people]:
            raise _refuse(f"{field} {addresses} instead of {[p.email for p in people]}")
        for entry, address in zip(entries, addresses, strict=True):
            name = str(entry["emailAddress"].get("name", ""))
            if address_problem(address) or display_name(name) != name:
                raise _refuse(f"{field} has an unsafe address or name")
    if not draft.to:
        raise _refuse("no recipient")
    for header in payload.get("internetMessageHeaders", []):
        name, value = str(header.get("name", "")), str(header.get("value", ""))
        if name != KEY_HEADER or value != draft.key or not _KEY.fullmatch(value):
            raise _refuse(f"an internet message header {name!r} that is not the key")
