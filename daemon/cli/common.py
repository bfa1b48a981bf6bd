"""Helpers every command shares: the user-error type, `--now`, the config, the store, JSON out."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from daemon.config import Config, load_config
from daemon.core.text import json_escape_invisible
from daemon.engine.state import StateStore
from providers import registry as _registry  # noqa: F401 - installs the providers' config sections


class UserError(Exception):
    """A mistake in how Salvage was called: shown plainly, exit 2."""


NOW_RANGE = (1971, 2999)


def parse_now(text: str | None) -> datetime:
    """``--now``: an ISO 8601 instant with an offset (e.g. 2026-11-24T10:30:00+00:00 or ...Z)."""
    from daemon.core.model import utc_now

    if text is None:
        return utc_now()
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--now {text!r} is not an ISO 8601 instant (e.g. 2026-11-24T10:30:00+00:00)") from None
    if parsed.utcoffset() is None:
        raise UserError(f"--now {text!r} has no timezone offset; add one, e.g. {text}+00:00 or {text}Z")
    # The read window and slot search reach weeks either side; near datetime's limits they overflow.
    if not NOW_RANGE[0] <= parsed.year <= NOW_RANGE[1]:
        raise UserError(f"--now {text!r} is out of range; give an instant between {NOW_RANGE[0]} and {NOW_RANGE[1]}")
    return parsed


def open_state(config: Config) -> StateStore:
    return StateStore.open(config.state_path)


def config_from(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def dump_json(data: Any) -> None:
    """Plain JSON on stdout, for programs."""
    # json escapes C0 controls itself; C1 and bidi characters are escaped too, so the output is
    # the same data yet safe to look at in a terminal.
    sys.stdout.write(json_escape_invisible(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")
