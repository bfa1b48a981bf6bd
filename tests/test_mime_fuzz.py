"""Bounded Hypothesis fuzz of the MIME builder (issue 8): generated hostile text, not only listed.

Properties, checked by this file's own reading of the bytes (not the builder's):
- with good addresses, whatever the subject, names, key-free text and threading ids, a draft is
  always built (the neutralising is complete, nothing is refused for text alone) and reads back
  with exactly the intended recipients and header names, no line over 998 octets;
- with any generated address, the builder either refuses (UnsafeDraft) or writes exactly that one
  address, never another and never more.
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.core.text import address_problem
from providers.base import Address, DraftMessage
from providers.mime import ALLOWED_HEADERS, UnsafeDraft, graph_recipients, message_bytes, verify_graph_message

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Pieces an attacker would reach for, mixed with ordinary and exotic text.
PIECES = st.sampled_from([
    "\r\n", "\n", "\r", "\x00", "\t", "\x1b[31m", "\x85", "\u2028", "\u202e", "\u2066", "\u200b", "\ufeff",
    "Bcc: spy@evil.example", "To: x@evil.example", "=?", "?=", "=?utf-8?q?", "=?utf-8?b?", "=0D=0A", "=0A",
    "=?utf-8?q?a=0D=0ABcc:_spy=40evil.example?=", "=?utf-8?b?DQpCY2M6IHNweUBldmlsLmV4YW1wbGU=?=",
    "=?iso-8859-1?q?=E9?=", '"', "\\", "<", ">", "@", ",", ";", ":", "(", ")", " ", "  ", "é", "日本", "🙂",
    "x" * 120, "Jordan", "Interview",
])
HOSTILE = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=12).map("".join)
GOOD_LOCAL = st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,20}[a-z0-9]", fullmatch=True).filter(lambda s: ".." not in s)
GOOD_ADDRESS = st.builds(lambda local, host: f"{local}@{host}.example", GOOD_LOCAL,
                         st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True))
ANY_ADDRESS = st.one_of(GOOD_ADDRESS, HOSTILE, st.builds(lambda a, b: a + b, GOOD_ADDRESS, HOSTILE),
                        st.builds(lambda a, b: a + b, HOSTILE, GOOD_ADDRESS))
MSG_IDS = st.one_of(st.none(), HOSTILE, st.just("<invite-1@calendar.example>"))

_HEADS = re.compile(rb"^([!-9;-~]+):", re.MULTILINE)
COUNTS: dict[str, int] = {"built": 0, "refused": 0}


def _read_back(raw: bytes) -> tuple[list[str], dict[str, list[str]]]:
    """Header names and To/From addresses of ``raw``, read with checks of this test's own."""
    head, sep, _ = raw.partition(b"\r\n\r\n")
    assert sep, "no end of headers"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    lines = head.split(b"\r\n")
    assert all(b"\r" not in line and b"\n" not in line and b"\0" not in line for line in lines)
    assert all(line[:1] in (b" ", b"\t") or _HEADS.match(line) for line in lines)
    names = [m.group(1).decode() for m in _HEADS.finditer(head)]
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    for value in parsed.values():
        assert not re.search(r"[\x00-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]", str(value)), value
    people = {h: [a.addr_spec for a in parsed[h].addresses] for h in ("From", "To") if parsed[h] is not None}
    return names, people


@FUZZ
@given(subject=HOSTILE, name=HOSTILE, sender_name=HOSTILE, to=GOOD_ADDRESS, reply=MSG_IDS,
       refs=st.lists(HOSTILE, max_size=3), text=HOSTILE)
def test_hostile_text_with_good_addresses_always_builds_exactly_what_was_meant(
        subject: str, name: str, sender_name: str, to: str, reply: str | None, refs: list[str], text: str) -> None:
    draft = DraftMessage(key="k" * 32, sender=Address("alex@example.com", sender_name), to=(Address(to, name),),
                         subject=subject, text=text, in_reply_to=reply, references=tuple(refs))
    raw = message_bytes(draft, unsent=True)
    COUNTS["built"] += 1
    names, people = _read_back(raw)
    assert set(names) <= ALLOWED_HEADERS and len(names) == len(set(names))
    assert people == {"From": ["alex@example.com"], "To": [to]}
    verify_graph_message({"subject": "x", "toRecipients": graph_recipients(draft.to)}, draft)


@FUZZ
@given(address=ANY_ADDRESS, name=HOSTILE)
def test_any_address_is_refused_or_written_exactly(address: str, name: str) -> None:
    draft = DraftMessage(key="k" * 32, sender=Address("alex@example.com"), to=(Address(address, name),),
                         subject="Hello", text="Hi")
    try:
        raw = message_bytes(draft)
    except UnsafeDraft:
        COUNTS["refused"] += 1
        assert address_problem(address) is not None
        return
    COUNTS["built"] += 1
    assert address_problem(address) is None
    assert _read_back(raw)[1]["To"] == [address]


def test_fuzz_counts_are_reported() -> None:
    """Runs after the two fuzzers in this file (pytest keeps file order): both kinds of case occurred."""
    assert COUNTS["built"] >= 150 and COUNTS["refused"] >= 30, COUNTS
    print(f"MIME fuzz: {COUNTS['built']} messages built and read back, {COUNTS['refused']} unsafe addresses refused")
