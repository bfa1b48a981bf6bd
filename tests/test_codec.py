"""The stored-event codec: every event comes back as it went in, the fast encoder (issue 14) writes the
very text the plain one it replaced wrote, and the fast decoder decodes exactly what the plain one did,
stored data of every shape included."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.model import Event, EventType, InvitationFacts, Person, Response, ShowAs, StatedTime
from daemon.engine.codec import event_from_dict, event_from_json, event_to_dict, event_to_json

# ---- the decoder as it was before issue 14: the reference the fast one must match ----------------

_TIME_FIELDS = {"start", "end", "recurrence_id", "created", "updated"}


def _reference_time(value: Any) -> datetime | date | None:
    if value is None:
        return None
    if value["t"] == "d":
        return date.fromisoformat(value["v"])
    parsed = datetime.fromisoformat(value["v"])
    zone = value.get("z")
    if zone:
        try:
            parsed = parsed.astimezone(ZoneInfo(zone))
        except Exception:  # noqa: BLE001 - an unknown zone name keeps the fixed offset
            pass
    return parsed


def _reference_person(d: Any) -> Person | None:
    return None if d is None else Person(**{**d, "response": Response(d["response"])})


def reference_from_dict(data: dict[str, Any]) -> Event:
    kwargs: dict[str, Any] = {}
    for f in fields(Event):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _TIME_FIELDS:
            kwargs[f.name] = _reference_time(value)
        elif f.name == "organizer":
            kwargs[f.name] = _reference_person(value)
        elif f.name == "attendees":
            kwargs[f.name] = tuple(_reference_person(p) for p in value)
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


def _reference_time_out(value: datetime | date | None) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return {"t": "dt", "v": value.isoformat(), "z": getattr(value.tzinfo, "key", None)}
    return {"t": "d", "v": value.isoformat()}


def _reference_person_out(p: Person | None) -> Any:
    if p is None:
        return None
    return {k: (getattr(p, k).value if k == "response" else getattr(p, k))
            for k in ("email", "name", "response", "is_self", "is_resource", "optional")}


def reference_to_json(event: Event) -> str:
    out: dict[str, Any] = {}
    for f in fields(Event):
        value = getattr(event, f.name)
        if f.name in _TIME_FIELDS:
            out[f.name] = _reference_time_out(value)
        elif f.name == "organizer":
            out[f.name] = _reference_person_out(value)
        elif f.name == "attendees":
            out[f.name] = [_reference_person_out(p) for p in value]
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
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


# ---- generated events ----------------------------------------------------------------------------

ZONES = st.sampled_from([timezone.utc, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"),
                         ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC"), timezone(timedelta(hours=5, minutes=45)),
                         timezone(timedelta(hours=-3))])
INSTANTS = st.builds(lambda d, z: d.replace(tzinfo=timezone.utc, fold=0).astimezone(z),  # ISO text has no fold
                     st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)), ZONES)
TEXT = st.text(max_size=12)
PEOPLE = st.builds(Person, email=st.emails(), name=TEXT, response=st.sampled_from(Response), is_self=st.booleans(),
                   is_resource=st.booleans(), optional=st.booleans())
STATED = st.builds(StatedTime, text=TEXT, hour=st.integers(0, 23), minute=st.integers(0, 59), zone=TEXT,
                   year=st.none() | st.integers(1990, 2090), month=st.none() | st.integers(1, 12),
                   day=st.none() | st.integers(1, 28))
INVITATIONS = st.none() | st.builds(InvitationFacts, subject=TEXT, phones=st.tuples(TEXT), join_urls=st.tuples(TEXT),
                                    times=st.lists(STATED, max_size=2).map(tuple))


@st.composite
def events(draw: st.DrawFn) -> Event:
    all_day = draw(st.booleans())
    if all_day:
        start: datetime | date = draw(st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 1, 1)))
        end: datetime | date = start + timedelta(days=draw(st.integers(1, 9)))
    else:
        start = draw(INSTANTS)
        end = start + timedelta(minutes=draw(st.integers(0, 600)))
    return Event(
        account=draw(TEXT), source_id=draw(TEXT), title=draw(st.text(max_size=40)), start=start, end=end,
        calendar_id=draw(TEXT), timezone=draw(st.none() | st.sampled_from(["Europe/Berlin", "UTC", "Nowhere/Else"])),
        description=draw(st.text(max_size=60)), location=draw(TEXT), organizer=draw(st.none() | PEOPLE),
        attendees=tuple(draw(st.lists(PEOPLE, max_size=4))), self_response=draw(st.sampled_from(Response)),
        show_as=draw(st.sampled_from(ShowAs)), cancelled=draw(st.booleans()),
        event_type=draw(st.sampled_from(EventType)), join_urls=tuple(draw(st.lists(TEXT, max_size=2))),
        phones=tuple(draw(st.lists(TEXT, max_size=2))), ical_uid=draw(st.none() | TEXT),
        series_id=draw(st.none() | TEXT), recurrence_id=draw(st.none() | st.just(start)),
        created=draw(st.none() | INSTANTS), updated=draw(st.none() | INSTANTS),
        categories=tuple(draw(st.lists(TEXT, max_size=2))), is_private=draw(st.booleans()),
        web_link=draw(st.none() | TEXT), thread_hints=tuple(draw(st.lists(st.tuples(TEXT, TEXT), max_size=2))),
        invitation=draw(INVITATIONS),
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(event=events())
def test_every_event_comes_back_identical(event: Event) -> None:
    text = event_to_json(event)
    assert text == reference_to_json(event)  # byte for byte: the store compares stored texts
    assert json.loads(text) == json.loads(json.dumps(event_to_dict(event)))
    back = event_from_json(text)
    # repr, not only ==: aware datetimes are equal across zones, but the zone must come back too.
    assert back == event and repr(back) == repr(event)
    assert repr(back) == repr(reference_from_dict(json.loads(text)))
    assert event_to_json(back) == text


ODD = [
    # a zone this machine does not know, and one at the edge of the calendar
    {"start": {"t": "dt", "v": "2026-11-24T09:00:00+02:00", "z": "Nowhere/Else"},
     "end": {"t": "dt", "v": "9999-12-31T23:00:00+00:00", "z": "Asia/Tokyo"}},
    # keys the decoder does not know, keys left out (their defaults), a list in a text field
    {"future_field": [1, 2], "title": ["a", "b"], "attendees": []},
    # a stored 1 is not True; a person with a list in it
    {"organizer": {"email": "a@b", "name": "", "response": "accepted", "is_self": 1, "is_resource": 0,
                   "optional": False},
     "attendees": [{"email": "a@b", "name": "", "response": "accepted", "is_self": True, "is_resource": False,
                    "optional": False},
                   {"email": "a@b", "name": ["x"], "response": "declined"}]},
    {"invitation": {"subject": "s"}, "thread_hints": [["message_id", "<m@x>"]], "show_as": "oof",
     "event_type": "birthday", "self_response": "organizer"},
]


def test_odd_stored_data_decodes_as_it_always_did() -> None:
    base = event_to_dict(Event(account="a", source_id="s", title="t", start=date(2026, 11, 24),
                               end=date(2026, 11, 25)))
    for extra in ODD:
        data = {**base, **extra}
        for _ in range(2):  # the second time from what the decoder kept
            assert repr(event_from_dict(data)) == repr(reference_from_dict(data))
            assert repr(event_from_json(json.dumps(data))) == repr(reference_from_dict(data))

