"""Builders for core tests: configs, events, interviews, meetings, all-day and out-of-office entries.

Other test modules may import these. Every datetime is aware; ``at("2026-11-24 09:00", "Europe/Berlin")``
reads a wall-clock time in a zone (``fold=1`` picks the second of a repeated hour).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from daemon.config import WEEKDAYS, Config
from daemon.core.classify import classify_all
from daemon.core.model import Classification, Event, EventType, Person, Response, ShowAs, Slot, person

UTC = timezone.utc
USER_EMAIL = "alex@example.com"
ME = person(USER_EMAIL, "Alex Morgan", Response.ACCEPTED, is_self=True)
RECRUITER = "jordan@acme-robotics.example"


def make_config(tz: str = "Europe/London", **sections: Any) -> Config:
    """A validated config for the user Alex in ``tz``; keyword arguments are whole config sections."""
    user = {"name": "Alex Morgan", "email": USER_EMAIL, "timezone": tz}
    user.update(sections.pop("user", {}))
    return Config.model_validate({"user": user, **sections})


def at(text: str, tz: str = "UTC", *, fold: int = 0) -> datetime:
    """An aware datetime from 'YYYY-MM-DD HH:MM' read in zone ``tz``."""
    naive = datetime.fromisoformat(text)
    zone = UTC if tz == "UTC" else ZoneInfo(tz)
    return naive.replace(tzinfo=zone, fold=fold)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "event"


def event(
    title: str,
    start: datetime | date,
    end: datetime | date | None = None,
    *,
    minutes: int = 60,
    key: str | None = None,
    account: str = "work",
    **fields: Any,
) -> Event:
    """Any event; ``key`` becomes its UID (and so its occurrence key unless it is a recurrence)."""
    if end is None:
        if isinstance(start, datetime):  # elapsed time, not wall-clock arithmetic (DST days)
            end = (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(start.tzinfo)
        else:
            end = start + timedelta(days=1)
    if key is None:
        stamp = start.astimezone(UTC).strftime("%Y%m%dT%H%M") if isinstance(start, datetime) else str(start)
        key = f"{_slug(title)}-{stamp}"
    fields.setdefault("source_id", key)
    fields.setdefault("ical_uid", key)
    return Event(account=account, title=title, start=start, end=end, **fields)


def interview(
    start: datetime,
    title: str = "Technical interview - Acme Robotics",
    *,
    minutes: int = 60,
    organizer: str | None = RECRUITER,
    organizer_name: str = "Jordan Lee",
    link: bool = True,
    **fields: Any,
) -> Event:
    """A clear-cut interview: keyword title, outside organizer, the user attending, a video link."""
    fields.setdefault("organizer", person(organizer, organizer_name, Response.ACCEPTED) if organizer else None)
    attendees = [ME]
    if organizer:
        attendees.insert(0, person(organizer, organizer_name, Response.ACCEPTED))
    fields.setdefault("attendees", tuple(attendees))
    if link:
        fields.setdefault("join_urls", ("https://acme.zoom.us/j/123456789",))
    return event(title, start, minutes=minutes, **fields)


def meeting(start: datetime, title: str = "Quarterly planning", *, minutes: int = 60, **fields: Any) -> Event:
    """An ordinary busy meeting at the user's current job."""
    fields.setdefault("organizer", person("chris@example.com", "Chris Doyle", Response.ACCEPTED))
    fields.setdefault("attendees", (ME,))
    return event(title, start, minutes=minutes, **fields)


def all_day(title: str, first: date, days: int = 1, **fields: Any) -> Event:
    """An all-day event covering ``days`` dates from ``first`` (end exclusive)."""
    return event(title, first, first + timedelta(days=days), **fields)


def out_of_office(first: date, days: int = 1, title: str = "Out of office", **fields: Any) -> Event:
    """An all-day out-of-office entry."""
    fields.setdefault("event_type", EventType.OUT_OF_OFFICE)
    fields.setdefault("show_as", ShowAs.OUT_OF_OFFICE)
    return all_day(title, first, days, **fields)


def attendee(email: str, name: str = "", **kwargs: Any) -> Person:
    return person(email, name, Response.ACCEPTED, **kwargs)


def classified(events: Iterable[Event], config: Config) -> dict[str, Classification]:
    return classify_all(list(events), config)


def forced(events: Iterable[Event], interviews: Iterable[str]) -> dict[str, Classification]:
    """Classifications that mark exactly ``interviews`` (occurrence keys) as interviews."""
    wanted = set(interviews)
    return {
        e.occurrence_key: Classification(e.occurrence_key, e.occurrence_key in wanted, 5.0 if e.occurrence_key in wanted else 0.0, ())
        for e in events
    }


def assert_slots_free(slots: Sequence[Slot], events: Iterable[Event], config: Config, now: datetime,
                      duration: timedelta, ignore: Iterable[str] = ()) -> None:
    """An independent check of every promise a slot makes (brute force over all events)."""
    tz = config.user.zone
    skip = set(ignore)
    before = timedelta(minutes=config.buffers.before_minutes)
    after = timedelta(minutes=config.buffers.after_minutes)
    busy = [e.span(tz) for e in events if e.blocks_time and e.occurrence_key not in skip]
    hours = config.working_hours
    for slot in slots:
        assert slot.start.utcoffset() is not None and slot.end.utcoffset() is not None
        assert slot.end.astimezone(UTC) - slot.start.astimezone(UTC) == duration, slot
        local_start, local_end = slot.start.astimezone(tz), slot.end.astimezone(tz)
        assert WEEKDAYS[local_start.weekday()] in hours.days, slot
        assert local_start.date() == local_end.date(), slot
        assert hours.start <= local_start.time() and local_end.time() <= hours.end, slot
        minutes = local_start.hour * 60 + local_start.minute
        assert minutes % config.slots.step_minutes == 0 and local_start.second == 0, slot
        # the wall-clock time must exist exactly once
        naive = local_start.replace(tzinfo=None)
        assert naive.replace(tzinfo=tz, fold=0).utcoffset() == naive.replace(tzinfo=tz, fold=1).utcoffset(), slot
        assert slot.start >= now + timedelta(hours=config.slots.min_notice_hours), slot
        assert slot.start < now + timedelta(days=config.slots.horizon_days), slot
        for start, end in busy:
            assert slot.end + after <= start or slot.start >= end + before, (slot, start, end)
    for i, a in enumerate(slots):
        for b in slots[i + 1 :]:
            assert a.end <= b.start or b.end <= a.start, (a, b)
