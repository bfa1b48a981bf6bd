"""Shared scenarios for the etiquette and golden-file tests: one interview per mode, one moment per kind."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from daemon.config import Config, parse_config
from daemon.core.model import Action, ActionKind, CaseFacts, Event, Mode, Slot, person
from daemon.engine.render import Renderer
from providers.base import DraftMessage

UTC = timezone.utc
START = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # Thursday: 15:00 GMT in London, 10:00 EST in New York
JORDAN = person("jordan.lee@acme-robotics.example", "Jordan Lee")
TITLES = {
    Mode.VIDEO: "Technical interview - Acme Robotics",
    Mode.PHONE: "Phone screen - Acme Robotics",
    Mode.ONSITE: "Onsite interview - Acme Robotics",
    Mode.UNKNOWN: "Interview - Acme Robotics",
}
# When each kind is drafted, relative to the interview's start.
MOMENTS = {
    ActionKind.RESCHEDULE: -timedelta(days=4),
    ActionKind.MISSED: timedelta(minutes=15),
    ActionKind.FOLLOW_UP: timedelta(days=1),
    ActionKind.THANK_YOU: -timedelta(days=3),
    ActionKind.JOIN_INFO: -timedelta(hours=20),
}


@cache
def renderer(language: str = "en", html: bool = False) -> Renderer:
    """One renderer per language (building one compiles its templates)."""
    return Renderer(config(language, html))


def config(language: str = "en", html: bool = False) -> Config:
    return parse_config(f"""
user:
  name: Alex Morgan
  email: alex.morgan@example.com
  timezone: Europe/London
  phone: "+44 7700 900123"
drafts:
  language: {language}
  html: {"true" if html else "false"}
""")


def event(mode: Mode, start: datetime = START, **fields: Any) -> Event:
    base: dict[str, Any] = dict(
        account="main", source_id=f"acme-{mode.value}", title=TITLES[mode], start=start,
        end=start + timedelta(hours=1), timezone="America/New_York", organizer=JORDAN, attendees=(JORDAN,),
    )
    base.update(fields)
    return Event(**base)


def slots(start: datetime = START) -> tuple[Slot, ...]:
    firsts = (start + timedelta(days=5, hours=-1), start + timedelta(days=6), start + timedelta(days=7, hours=1))
    return tuple(Slot(s, s + timedelta(hours=1)) for s in firsts)


def action(kind: ActionKind, mode: Mode, reason: str = "scheduling_conflict", ev: Event | None = None,
           **fields: Any) -> Action:
    ev = ev or event(mode)
    base: dict[str, Any] = dict(
        kind=kind, account="main", occurrence_key=ev.occurrence_key, recipients=(JORDAN,), reason=reason,
        slots=slots() if kind in (ActionKind.RESCHEDULE, ActionKind.MISSED, ActionKind.FOLLOW_UP) else (),
        recipient_timezone="America/New_York", mode=mode,
    )
    if reason == "time_zone":
        base["probable"] = Slot(START + timedelta(hours=2), START + timedelta(hours=3))
    if kind is ActionKind.FOLLOW_UP:
        base["case"] = CaseFacts(follows_miss=True, apology_sent=True)
    base.update(fields)
    return Action(**base)


def render(kind: ActionKind, mode: Mode, reason: str = "scheduling_conflict", *, language: str = "en",
           now: datetime | None = None, html: bool = False, **fields: Any) -> DraftMessage:
    ev = fields.pop("ev", None) or event(mode)
    act = action(kind, mode, reason, ev, **fields)
    moment = now or (START + MOMENTS[kind])
    return renderer(language, html).render(act, ev, now=moment)


def with_case(act: Action, **facts: Any) -> Action:
    return replace(act, case=replace(act.case, **facts))
