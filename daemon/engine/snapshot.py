"""The last plan, written down so that a new process can act on it.

`salvage run --once` over a thousand unchanged calendars would otherwise decode, classify and plan
every stored event again only to find the same drafts. What reconciling needs is small: the planned
actions, the events they are about (as the evaluation saw them: the copy it picked, its invitation's
facts attached) and the moments the plan changes by itself. Those are kept with the store's generation
and a fingerprint of what else the plan depends on (the configuration, the Salvage version); the
engine uses them only while both still match and the plan is still in time (see
:meth:`daemon.engine.pipeline.Engine.evaluation`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from daemon import __version__
from daemon.config import Config
from daemon.core.model import Action, Event, Wakeup
from daemon.engine.codec import event_from_json, event_to_json, instant_from_text, instant_to_text

if TYPE_CHECKING:
    from pydantic import TypeAdapter

FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    """A plan as it was made at ``now``: enough to reconcile drafts and to schedule wake-ups."""

    now: datetime
    window: tuple[datetime, datetime] | None
    actions: tuple[Action, ...]
    wakeups: tuple[Wakeup, ...]
    events: dict[str, Event]  # by occurrence key: each action's event


def fingerprint(config: Config) -> str:
    """What a plan depends on besides the stored state: the whole configuration and this Salvage."""
    digest = hashlib.sha256(config.model_dump_json().encode())
    digest.update(f"|{__version__}|{FORMAT}".encode())
    return digest.hexdigest()


@cache
def _actions() -> TypeAdapter[tuple[Action, ...]]:
    from pydantic import TypeAdapter

    return TypeAdapter(tuple[Action, ...])


@cache
def _wakeups() -> TypeAdapter[tuple[Wakeup, ...]]:
    from pydantic import TypeAdapter

    return TypeAdapter(tuple[Wakeup, ...])


def dump(snapshot: Snapshot, fingerprint: str) -> str:
    window = [instant_to_text(t) for t in snapshot.window] if snapshot.window else None
    return json.dumps({
        "format": FORMAT,
        "fingerprint": fingerprint,
        "now": instant_to_text(snapshot.now),
        "window": window,
        "actions": json.loads(_actions().dump_json(snapshot.actions)),
        "wakeups": json.loads(_wakeups().dump_json(snapshot.wakeups)),
        "events": {key: event_to_json(event) for key, event in snapshot.events.items()},
    }, separators=(",", ":"))


def load(text: str, fingerprint: str) -> Snapshot | None:
    """The snapshot in ``text`` if it was made with the same :func:`fingerprint`; else None.

    Anything unreadable is None too: the plan is then made afresh, which is always right.
    """
    try:
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != FORMAT or data.get("fingerprint") != fingerprint:
            return None
        window = data["window"]
        return Snapshot(
            now=instant_from_text(data["now"]),
            window=(instant_from_text(window[0]), instant_from_text(window[1])) if window else None,
            actions=_actions().validate_python(data["actions"]),
            wakeups=_wakeups().validate_python(data["wakeups"]),
            events={key: event_from_json(value) for key, value in data["events"].items()},
        )
    except Exception:  # noqa: BLE001 - a snapshot is only a shortcut
        return None
