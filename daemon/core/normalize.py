"""Helpers every provider uses at its boundary: zones, join links, phone numbers, plain text.

Pure functions, no I/O. Provider modules call these so that an event means the same thing
whichever provider it came from.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

_WINDOWS_EXTRA = {
    # Values Graph/Outlook emit that are not in CLDR's table.
    "tzone://Microsoft/Utc": "UTC",
    "tzone://Microsoft/Custom": None,
    "Customized Time Zone": None,
    "Coordinated Universal Time": "UTC",
    "UTC": "UTC",
    "GMT": "UTC",
    "Z": "UTC",
}


@lru_cache(maxsize=512)
def zone_name(name: str | None) -> str | None:
    """An IANA zone name for an IANA, Windows or Outlook zone name; None if it is unknown.

    Windows names are mapped with CLDR's table as shipped by ``tzlocal``.
    """
    if not name:
        return None
    text = name.strip().strip('"')
    if text in _WINDOWS_EXTRA:
        return _WINDOWS_EXTRA[text]
    if text in win_tz:
        return str(win_tz[text])
    # Outlook sometimes writes "(UTC+01:00) Amsterdam, Berlin…" display names; those are not mapped.
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        # Some producers prefix IANA names, e.g. "/mozilla.org/20050126_1/Europe/Berlin".
        match = re.search(r"([A-Z][A-Za-z_+-]+/[A-Za-z_+-]+(?:/[A-Za-z_+-]+)?)$", text)
        if match and match.group(1) != text:
            return zone_name(match.group(1))
        return None
    return text


def zone(name: str | None, default: tzinfo | None = None) -> tzinfo | None:
    """A tzinfo for a zone name (IANA or Windows), or ``default``."""
    iana = zone_name(name)
    if iana is None:
        return default
    if iana == "UTC":
        return timezone.utc
    return ZoneInfo(iana)


def aware(value: datetime, tz: tzinfo | None) -> datetime:
    """Attach ``tz`` (or UTC when None) to a naive datetime; leave aware ones alone."""
    if value.utcoffset() is not None:
        return value
    return value.replace(tzinfo=tz or timezone.utc)


def parse_instant(text: str, tz: tzinfo | None = None) -> datetime:
    """Parse an ISO 8601 / RFC 3339 timestamp; a value without offset is read in ``tz`` (UTC default).

    Accepts Graph's seven fractional digits and a trailing ``Z``.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", value)
    if match:  # fromisoformat takes at most 6 fractional digits on some versions
        value = f"{match.group(1)}.{match.group(2)[:6].ljust(6, '0')}{match.group(3)}"
    return aware(datetime.fromisoformat(value), tz)


def parse_date(text: str) -> date:
    """Parse a ``YYYY-MM-DD`` date (the date part of longer strings is used)."""
    return date.fromisoformat(text.strip()[:10])


_URL = re.compile(r"""https?://[^\s<>"'\]\[)(]+""", re.IGNORECASE)
_JOIN_HOSTS = re.compile(
    r"(^|\.)("
    r"zoom\.us|zoom\.com|zoomgov\.com|meet\.google\.com|teams\.microsoft\.com|teams\.live\.com|"
    r"webex\.com|gotomeet(ing)?\.com|gotomeet\.me|bluejeans\.com|whereby\.com|meet\.jit\.si|"
    r"chime\.aws|skype\.com|join\.me|around\.co|hirevue\.com|coderpad\.io|codesignal\.com|"
    r"hackerrank\.com|karat\.(com|io)|app\.codility\.com|meet\.lync\.com|lifesize\.com|"
    r"ringcentral\.com|dialpad\.com|vowel\.com|livestorm\.co|talky\.io|discord\.gg"
    r")$",
    re.IGNORECASE,
)


def find_urls(text: str) -> list[str]:
    """All http(s) URLs in a text, trailing punctuation removed, in order, without repeats."""
    found: list[str] = []
    for match in _URL.finditer(html.unescape(text or "")):
        url = match.group(0).rstrip(".,;:!?'\">")
        if url not in found:
            found.append(url)
    return found


def is_join_url(url: str) -> bool:
    """True for URLs of video-meeting and remote-interview services."""
    match = re.match(r"https?://([^/:?#]+)", url, re.IGNORECASE)
    return bool(match and _JOIN_HOSTS.search(match.group(1)))


def find_join_urls(*texts: str) -> tuple[str, ...]:
    """Meeting links found in the given texts (location, description…)."""
    out: list[str] = []
    for text in texts:
        for url in find_urls(text):
            if is_join_url(url) and url not in out:
                out.append(url)
    return tuple(out)


_PHONE = re.compile(
    r"(?<![\w/=.,#*-])"  # not inside a URL, id, date or a dial string's PIN (after ",,")
    r"(?:tel:)?"
    r"(\+?\(?\d{1,4}\)?(?:[ .\-\u00a0]?\(?\d{1,4}\)?){2,6})"
    r"(?:\s*(?:x|ext\.?|,,?|#)\s*\d{1,6})?"
    r"(?![\w/.-]*\w)",
    re.IGNORECASE,
)
_PHONE_HINT = re.compile(r"(phone|call|dial|tel|mobile|cell|ring|number|\+\d)", re.IGNORECASE)
# Digits right after these are codes, not numbers to call.
_CODE_LABEL = re.compile(
    r"(pin|passcode|password|pwd|code|meeting\s*id|conference\s*id|webinar\s*id|\bid)\s*[:#.]?\s*$", re.IGNORECASE
)


def find_phones(*texts: str) -> tuple[str, ...]:
    """Phone numbers in free text: 7 to 15 digits, found near a hint word or written with a '+'.

    Conservative on purpose: dates, times, ids and meeting codes must not become phone numbers.
    """
    out: list[str] = []
    for text in texts:
        plain = html.unescape(text or "")
        for match in _PHONE.finditer(plain):
            number = match.group(1).strip(" .-")
            digits = re.sub(r"\D", "", number)
            if not 7 <= len(digits) <= 15:
                continue
            if re.fullmatch(r"\d{4}[-.]\d{2}[-.]\d{2}", number) or re.fullmatch(r"[\d:. ]+", number) and ":" in number:
                continue
            if _CODE_LABEL.search(plain[max(0, match.start() - 30) : match.start()]):
                continue
            context = plain[max(0, match.start() - 40) : match.start() + 1]
            if not (number.startswith("+") or match.group(0).lower().startswith("tel:") or _PHONE_HINT.search(context)):
                continue
            if number not in out:
                out.append(number)
    return tuple(out)


# Not a tag: "<https://…>" and "<mailto:…>", as Outlook writes links in plain-text bodies.
_TAG = re.compile(r"<(?!(?:https?|mailto|tel):)[^>]+>", re.IGNORECASE)
_BREAK = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h\d)\s*/?>", re.IGNORECASE)


def html_to_text(value: str) -> str:
    """A readable plain-text version of an HTML description (Google and Graph bodies)."""
    if "<" not in value:
        return html.unescape(value)
    text = _BREAK.sub("\n", value)
    text = re.sub(r"<\s*(script|style)[^>]*>.*?<\s*/\s*\1\s*>", "", text, flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"""<a\s[^>]*href=["']([^"']+)["'][^>]*>(.*?)</a>""", r"\2 (\1)", text, flags=re.IGNORECASE | re.DOTALL)
    text = html.unescape(_TAG.sub("", text))
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()
