"""Lossless JSON for :class:`Event` (for the state store) and small time helpers for storage.

Storage keeps instants as UTC ISO strings; dates stay dates; the event's own zone is kept by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import date, datetime, timezone, tzinfo
from enum import Enum
from operator import attrgetter
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

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


def _person_out(p: Person | None) -> Any:
    if p is None:
        return None
    return {k: (getattr(p, k).value if k == "response" else getattr(p, k)) for k in _PERSON_FIELDS}


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


# ---- encoding: what event_to_dict gives, written by json's C encoder in sorted order ---------------
#
# The text must stay byte for byte what it was (the store compares it to tell a changed event), so
# every mapping below is built with its keys in sorted order and written without sort_keys (sorting
# was a third of the cost); json writes tuples as lists and str-enums as their values itself.

_NAMES = tuple(sorted(f.name for f in fields(Event)))
_VALUES = attrgetter(*_NAMES)


def _datetime_out(value: datetime) -> dict[str, Any]:
    return {"t": "dt", "v": value.isoformat(), "z": getattr(value.tzinfo, "key", None)}


def _date_out(value: date) -> dict[str, Any]:
    return {"t": "d", "v": value.isoformat()}


def _person_json(p: Person) -> dict[str, Any]:
    return {"email": p.email, "is_resource": p.is_resource, "is_self": p.is_self, "name": p.name,
            "optional": p.optional, "response": p.response.value}


def _invitation_json(value: InvitationFacts) -> dict[str, Any]:
    return {"join_urls": value.join_urls, "phones": value.phones, "subject": value.subject, "times": value.times}


def _stated_json(t: StatedTime) -> dict[str, Any]:
    return {"day": t.day, "hour": t.hour, "minute": t.minute, "month": t.month, "text": t.text, "year": t.year,
            "zone": t.zone}


_JSON_OUT: dict[type, Callable[[Any], dict[str, Any]]] = {
    datetime: _datetime_out, date: _date_out, Person: _person_json, InvitationFacts: _invitation_json,
    StatedTime: _stated_json,
}


def _json_out(value: Any) -> dict[str, Any]:
    """The stored form of a value json cannot write itself (its ``default``)."""
    out = _JSON_OUT.get(type(value))
    if out is None:  # a subclass (datetime before date: a datetime is a date)
        out = next((f for kind, f in _JSON_OUT.items() if isinstance(value, kind)), None)
        if out is None:
            raise TypeError(f"{type(value).__name__} cannot be stored in an event")
    return out(value)


_ENCODE = json.JSONEncoder(separators=(",", ":"), default=_json_out).encode


def event_to_json(event: Event) -> str:
    """The stored text of ``event``: :func:`event_to_dict` as compact JSON with sorted keys."""
    return _ENCODE(dict(zip(_NAMES, _VALUES(event), strict=True)))


# ---- decoding: one converter per stored key, made once -------------------------------------------
#
# Every evaluation decodes every stored event (tens of thousands with many accounts), so the decoder
# avoids per-event work that gives the same answer each time: the field list, enum lookups by value,
# zone look-ups, and the Person objects that recur in every event (the user, the organizer).

_ZONES: dict[str, tzinfo | None] = {}


def _zone(name: str) -> tzinfo | None:
    """The zone of that name (kept); None for a name this machine does not know."""
    try:
        return _ZONES[name]
    except KeyError:
        pass
    try:
        zone: tzinfo | None = ZoneInfo(name)
    except Exception:  # noqa: BLE001 - an unknown or malformed zone name keeps the fixed offset
        zone = None
    if len(_ZONES) < 1024:
        _ZONES[name] = zone
    return zone


def _time_in(value: Any) -> datetime | date | None:
    if value is None:
        return None
    if value["t"] == "d":
        return date.fromisoformat(value["v"])
    parsed = datetime.fromisoformat(value["v"])
    name = value.get("z")
    if name:
        zone = _zone(name)
        if zone is not None:
            try:
                parsed = parsed.astimezone(zone)
            except Exception:  # noqa: BLE001 - at the edge of the calendar: keep the fixed offset
                pass
    return parsed


E = TypeVar("E", bound=Enum)


def _enum_in(kind: type[E]) -> Callable[[Any], E]:
    members: dict[Any, E] = {member.value: member for member in kind}

    def decode(value: Any) -> E:
        try:
            return members[value]
        except (KeyError, TypeError):
            return kind(value)  # whatever the enum itself says of it (an error, as before)

    return decode


_response_in = _enum_in(Response)
_PEOPLE: dict[tuple[Any, ...], Person] = {}


def _person_in(d: Any) -> Person | None:
    if d is None:
        return None
    try:
        # The types are part of the key: 1 == True, but a stored 1 must not come back as True.
        key = (*d.items(), *map(type, d.values()))
        return _PEOPLE[key]
    except KeyError:
        pass
    except (TypeError, AttributeError):  # not a mapping, or a value that cannot be a key: decode as is
        return Person(**{**d, "response": _response_in(d["response"])})
    found = Person(**{**d, "response": _response_in(d["response"])})
    if len(_PEOPLE) >= 4096:  # a bound, not a policy: people recur across events, not across runs
        _PEOPLE.clear()
    _PEOPLE[key] = found
    return found


def _plain_in(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _invitation_in(value: Any) -> InvitationFacts | None:
    if value is None:
        return None
    return InvitationFacts(
        subject=value.get("subject", ""), phones=tuple(value.get("phones", ())),
        join_urls=tuple(value.get("join_urls", ())),
        times=tuple(StatedTime(**t) for t in value.get("times", ())),
    )


_DECODERS: dict[str, Callable[[Any], Any]] = {f.name: _plain_in for f in fields(Event)}
_DECODERS.update(
    {name: _time_in for name in _TIME_FIELDS},
    organizer=_person_in,
    attendees=lambda value: tuple(_person_in(p) for p in value),
    thread_hints=lambda value: tuple((a, b) for a, b in value),
    invitation=_invitation_in,
    self_response=_response_in,
    show_as=_enum_in(ShowAs),
    event_type=_enum_in(EventType),
)


def event_from_dict(data: dict[str, Any]) -> Event:
    """The :class:`Event` of :func:`event_to_dict`'s mapping; keys it does not know are ignored."""
    decoders = _DECODERS
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        decode = decoders.get(name)
        if decode is not None:
            kwargs[name] = decode(value)
    return Event(**kwargs)


def event_from_json(text: str) -> Event:
    """The :class:`Event` stored as ``text`` by :func:`event_to_json`."""
    return event_from_dict(json.loads(text))

