"""How an interview is held (video, phone, onsite), read from its invitation. Pure.

The drafts word the reason and the questions after it: a video interview is joined, a phone screen
is taken, an onsite one is travelled to; a missing link is asked for only when a link is what is
missing.
"""

from __future__ import annotations

import re

from daemon.core.detect import in_person, is_physical
from daemon.core.model import Event, Mode
from daemon.core.normalize import find_join_urls, find_phones

_PHONE = re.compile(r"(?<!\w)(phone|telephone|call|dial[- ]?in)(?!\w)", re.IGNORECASE)
_VIDEO = re.compile(r"(?<!\w)(video|zoom|teams|google meet|meet|webex|skype|hangouts?|virtual|remote|online)(?!\w)",
                    re.IGNORECASE)
_ONSITE = re.compile(r"(?<!\w)(on-?site|in[- ]person|face[- ]to[- ]face|office visit|at our office)(?!\w)",
                     re.IGNORECASE)
_PHONE_LOCATION = re.compile(r"^\s*(phone( call)?|telephone|call|by phone|tel\.?)\s*$", re.IGNORECASE)


def interview_mode(event: Event) -> Mode:
    """Video, phone or onsite: links and places first, then the words of the title and location."""
    title = event.title or ""
    location = event.location or ""
    urls = event.join_urls or find_join_urls(location, event.description[:20_000])
    if _ONSITE.search(title) or in_person(event):
        return Mode.ONSITE if not urls or _ONSITE.search(title) else Mode.VIDEO
    if urls:
        # "Phone screen" with a Meet link is still held over video; a phone word alone is not enough.
        return Mode.VIDEO
    if _PHONE.search(title) or _PHONE_LOCATION.match(location) or event.phones:
        return Mode.PHONE
    if _VIDEO.search(title) or _VIDEO.search(location):
        return Mode.VIDEO
    if is_physical(location):
        return Mode.ONSITE
    if find_phones(location):
        return Mode.PHONE
    return Mode.UNKNOWN
