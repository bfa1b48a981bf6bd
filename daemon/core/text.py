"""Untrusted text made safe: one-line header text, display names, addresses, message ids, terminal text.

Everything that comes from a calendar or a mailbox is written by someone else. Pure functions, no
I/O. None of this relies on the ``email`` package: its header code has decoded RFC 2047
encoded-words into raw CR/LF in released interpreters, so the neutralising is done here, by hand,
before any text reaches it.
"""

from __future__ import annotations

import base64
import binascii
import re

# Characters that are never shown or written: C0/C1 controls and DEL (Cc), line and paragraph
# separators, lone surrogates, and the invisible format characters (Cf) — bidi embeddings,
# overrides and isolates, zero-width space/joiners, soft hyphen, BOM, tags — which can make text
# read differently from what it is. The Cf list matches Unicode 15 (a test checks it).
_FORMAT_RANGES = (
    "\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_INVISIBLE = re.compile(f"[\x00-\x1f{_FORMAT_RANGES}]+")
_FORMAT = re.compile(f"[{_FORMAT_RANGES}]+")  # not C0: json.dumps escapes those itself
_INVISIBLE_NOT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_FORMAT_RANGES}]+")
# Terminal escape sequences: CSI (ESC [ … final), OSC/DCS/APC/PM/SOS strings (… BEL or ST), and
# two-character escapes; the 8-bit C1 forms (U+009B CSI, U+009D OSC) too.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P^_X]|[\x9d\x90\x9e\x9f\x98])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,40})\?([qQbB])\?([^?\s]*)\?=")
_SPACES = re.compile(r"\s+")
_NAME_SPOOF = re.compile(r"[@<>]")

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MSG_ID = re.compile(r"<[!-;=?-~]{1,250}>")  # printable ASCII, no space, no '<' '>' inside

MAX_ADDRESS = 254  # RFC 5321 4.5.3.1: a path of 256 octets including the angle brackets
MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_LABEL = 63


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, data = match.group(1).split("*", 1)[0], match.group(2).upper(), match.group(3)
    try:
        if encoding == "Q":
            raw = binascii.a2b_qp(data.replace("_", " ").encode("ascii"), header=True)
        else:
            raw = base64.b64decode(data.encode("ascii") + b"=" * (-len(data) % 4))
        return raw.decode(charset, "replace")
    except (ValueError, LookupError, UnicodeError, binascii.Error):
        return match.group(0)  # left as written; defused below like any other "=?"


def _decode_once(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        if pos and not gap.strip(" \t\r\n"):
            gap = ""  # RFC 2047 6.2: white space between two adjacent encoded-words is not text
        out.append(gap)
        out.append(_decode_word(match))
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


def decode_encoded_words(text: str, rounds: int = 3) -> str:
    """RFC 2047 encoded-words (``=?utf-8?q?...?=``) decoded to what they say, nested ones too."""
    for _ in range(rounds):
        if "=?" not in text:
            break
        decoded = _decode_once(text)
        if decoded == text:
            break
        text = decoded
    return text


def strip_invisible(text: str, *, keep_newlines: bool = False) -> str:
    """Terminal escape sequences removed; other control and invisible format characters become spaces."""
    text = _ESCAPE.sub("", text)
    if keep_newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return _INVISIBLE_NOT_NEWLINE.sub(" ", text)
    return _INVISIBLE.sub(" ", text)


def one_line(value: str, limit: int = 200) -> str:
    """Untrusted text as one safe line of header text.

    Encoded-words are decoded (what the sender meant, shown as text), control, escape and bidi
    characters become spaces, runs of white space collapse, and any ``=?`` left is written
    ``= ?`` so that no mail library can ever decode it again.
    """
    text = strip_invisible(decode_encoded_words(value or ""))
    text = _SPACES.sub(" ", text.replace("=?", "= ?")).strip()
    text = text[:limit].rstrip()
    return text.replace("=?", "= ?")  # cutting can not create one, but keep the promise obvious


def is_one_line(text: str) -> bool:
    """True when ``text`` is already what :func:`one_line` makes of it (no cut)."""
    return one_line(text, len(text) + 1) == text


def display_name(value: str, limit: int = 100) -> str:
    """A display name safe to put before an address; '' when it looks like an address itself.

    A name such as ``Jordan <jordan@company.com>`` in front of someone else's address is a
    spoof: the reader sees the name, the mail goes to the address.
    """
    name = one_line(value, limit)
    if _NAME_SPOOF.search(name):
        return ""
    return name.replace('"', "'").replace("\\", "/").strip()


def address_problem(value: str) -> str | None:
    """Why ``value`` is not exactly one plain addr-spec within RFC 5321's lengths; None when it is.

    Strict on purpose: ASCII only, a dot-atom local part (no quoted strings, no comments), a
    host name of letter/digit/hyphen labels. Anything else gets no draft.
    """
    if not isinstance(value, str) or not value:
        return "no address"
    if any(not "!" <= ch <= "~" for ch in value):
        return "it contains a space, a control character or a non-ASCII character"
    if value.count("@") != 1:
        return "it is not exactly one address (one '@')"
    if "=?" in value:
        return "it contains an encoded-word ('=?')"
    if len(value) > MAX_ADDRESS:
        return f"it is longer than {MAX_ADDRESS} characters"
    local, _, domain = value.partition("@")
    if not local or len(local) > MAX_LOCAL:
        return f"the part before '@' is empty or longer than {MAX_LOCAL} characters"
    if not _LOCAL.fullmatch(local):
        return "the part before '@' has characters an address cannot have (',', ';', quotes, brackets…)"
    if len(domain) > MAX_DOMAIN:
        return f"the domain is longer than {MAX_DOMAIN} characters"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return "the domain is not a host name (letters, digits and hyphens, with a dot)"
    if labels[-1].isdigit():
        return "the domain is not a host name (letters, digits and hyphens, with a dot)"
    return None


def msg_id(value: str) -> str | None:
    """A Message-ID (``<left@right>``) safe to put in In-Reply-To/References; None when it is not."""
    text = (value or "").strip()
    if not _MSG_ID.fullmatch(text) or "=?" in text:
        return None
    return text


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    out = []
    for ch in match.group(0):
        code = ord(ch)
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _json_escape(match: re.Match[str]) -> str:
    out = []
    for ch in match.group(0):
        code = ord(ch)
        if code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


def escape_invisible(text: str) -> str:
    """Control, escape and invisible format characters written as visible escapes (``\\n``, ``\\x1b``).

    For one-line records (log lines): the text can show what was there but never start a new
    line, move the cursor or reorder what follows.
    """
    return _INVISIBLE.sub(_visible, text)


def json_escape_invisible(dumped: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with C1, bidi and other invisible
    characters written as ``\\uXXXX`` escapes too: the same data, safe to show on a terminal."""
    return _FORMAT.sub(_json_escape, dumped)
