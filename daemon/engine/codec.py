"""Lossless JSON for :class:`Event` (for the state store) and small time helpers for storage.

Storage keeps instants as UTC ISO strings; dates stay dates; the event's own zone is kept by name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date, datetime, timezone
from typing import Any

from daemon.core.model import Event, EventType, InvitationFacts, Person, Response, ShowAs, StatedTime

_PERSON_FIELDS = ("email", "name", "response", "is_self", "is_resource", "optional")


def instant_to_text(value: datetime) -> str:
    """A UTC ISO 8601 string for an aware datetime (rejects naive ones)."""
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r} cannot be stored")
    return value.astimezone(timezone.utc).isoformat()


def instant_from_text(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError(f"stored instant {text!r} has no offset")
    return value


def _time_out(value: datetime | date | None) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        # Keep the original offset/zone for display; the instant is what matters.
        return {"t": "dt", "v": value.isoformat(), "z": getattr(value.tzinfo, "key", None)}
    return {"t": "d", "v": value.isoformat()}


def _time_in(value: Any) -> datetime | date | None:
    if value is None:
        return None
    if value["t"] == "d":
        return date.fromisoformat(value["v"])
    parsed = datetime.fromisoformat(value["v"])
    zone = value.get("z")
    if zone:
        from zoneinfo import ZoneInfo

        try:
            parsed = parsed.astimezone(ZoneInfo(zone))
        except Exception:  # noqa: BLE001 - an unknown zone name keeps the fixed offset
            pass
    return parsed


def _person_out(p: Person | None) -> Any:
    if p is None:
        return None
    return {k: (getattr(p, k).value if k == "response" else getattr(p, k)) for k in _PERSON_FIELDS}


def _person_in(d: Any) -> Person | None:
    if d is None:
        return None
    return Person(**{**d, "response": Response(d["response"])})


_TIME_FIELDS = {"start", "end", "recurrence_id", "created", "updated"}


def event_to_dict(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Event):
        value = getattr(event, f.name)
        if f.name in _TIME_FIELDS:
            out[f.name] = _time_out(value)
        elif f.name == "organizer":
            out[f.name] = _person_out(value)
        elif f.name == "attendees":
            out[f.name] = [_person_out(p) for p in value]
        elif f.name == "thread_hints":
            out[f.name] = [list(pair) for pair in value]
        elif f.name == "invitation":
            out[f.name] = None if value is None else {
                "subject": value.subject, "phones": list(value.phones), "join_urls": list(value.join_urls),
                "times": [asdict(t) for t in value.times],
            }
        elif isinstance(value, (Response, ShowAs, EventType)):
            out[f.name] = value.value
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def event_from_dict(data: dict[str, Any]) -> Event:
    kwargs: dict[str, Any] = {}
    for f in fields(Event):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _TIME_FIELDS:
            kwargs[f.name] = _time_in(value)
        elif f.name == "organizer":
            kwargs[f.name] = _person_in(value)
        elif f.name == "attendees":
            kwargs[f.name] = tuple(_person_in(p) for p in value)
        elif f.name == "thread_hints":
            kwargs[f.name] = tuple((a, b) for a, b in value)
        elif f.name == "invitation":
            kwargs[f.name] = None if value is None else InvitationFacts(
                subject=value.get("subject", ""), phones=tuple(value.get("phones", ())),
                join_urls=tuple(value.get("join_urls", ())),
                times=tuple(StatedTime(**t) for t in value.get("times", ())),
            )
        elif f.name == "self_response":
            kwargs[f.name] = Response(value)
        elif f.name == "show_as":
            kwargs[f.name] = ShowAs(value)
        elif f.name == "event_type":
            kwargs[f.name] = EventType(value)
        elif isinstance(value, list):
            kwargs[f.name] = tuple(value)
        else:
            kwargs[f.name] = value
    return Event(**kwargs)


def event_to_json(event: Event) -> str:
    return json.dumps(event_to_dict(event), separators=(",", ":"), sort_keys=True)


def event_from_json(text: str) -> Event:
    return event_from_dict(json.loads(text))
