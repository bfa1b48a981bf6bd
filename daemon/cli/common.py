"""Helpers every command shares: the user-error type, `--now`, the config, the store, JSON out."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.config import AccountConfig, Config, default_config_path, key_lines, load_config
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


def config_source(args: argparse.Namespace) -> Path:
    """The config file a command reads (``--config``, ``$SALVAGE_CONFIG`` or the platform path)."""
    return (getattr(args, "config", None) or default_config_path()).expanduser().absolute()


def config_location(args: argparse.Namespace, *keys: str | int) -> str:
    """``file:line`` of a key path in the config file (the file alone if the key is not written there)."""
    source = config_source(args)
    try:
        lines = key_lines(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return str(source)
    probe = tuple(keys)
    while probe:
        if probe in lines:
            return f"{source}:{lines[probe]}"
        probe = probe[:-1]
    return str(source)


def dump_json(data: Any) -> None:
    """Plain JSON on stdout, for programs."""
    # json escapes C0 controls itself; C1 and bidi characters are escaped too, so the output is
    # the same data yet safe to look at in a terminal.
    sys.stdout.write(json_escape_invisible(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")


_PLACEHOLDER = re.compile(r"(?i)^(0{8}-0{4}-0{4}-0{4}-0{12}|<[^>]*>|.*(your|change[ _-]?me|placeholder|xxx).*)$")


def placeholder_problems(account: AccountConfig) -> list[tuple[tuple[str, ...], str]]:
    """Credentials left as the example's placeholders, found before any network call: (key path, message)."""
    found: list[tuple[tuple[str, ...], str]] = []
    client_id = getattr(account.connection("microsoft"), "client_id", None)
    if isinstance(client_id, str) and _PLACEHOLDER.match(client_id.strip()):
        found.append((("microsoft", "client_id"),
                      f"account {account.name!r}: microsoft.client_id {client_id!r} is the example's placeholder, "
                      "not an app registration; register your own app (docs/microsoft.md) and put its "
                      "Application (client) ID there, or set SALVAGE_MS_CLIENT_ID"))
    secrets = getattr(account.connection("google"), "client_secrets", None)
    if isinstance(secrets, Path) and secrets.is_file():
        try:
            data = json.loads(secrets.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        client = (data.get("installed") or data.get("web") or {}) if isinstance(data, dict) else {}
        google_id = str(client.get("client_id", "")) if isinstance(client, dict) else ""
        if google_id and _PLACEHOLDER.match(google_id.split(".apps.googleusercontent.com")[0]):
            found.append((("google", "client_secrets"),
                          f"account {account.name!r}: {secrets} holds a placeholder client id "
                          f"{google_id!r}; download your own OAuth client JSON (docs/google.md)"))
    return found


def account_problems(args: argparse.Namespace, config: Config) -> list[str]:
    """What would make an enabled account fail at its first poll, each with its key path, file and line."""
    problems: list[str] = []
    for i, account in enumerate(config.accounts):
        if not account.enabled:
            continue
        path = getattr(account.calendar, "path", None)
        if path is not None and not Path(path).exists():
            where = config_location(args, "accounts", i, "calendar", "path")
            problems.append(f"accounts[{i}].calendar.path ({where}): {path} does not exist; "
                            f"point it at your .ics file, or set enabled: false for account {account.name!r}")
        for keys, problem in placeholder_problems(account):
            problems.append(f"accounts[{i}].{'.'.join(keys)} ({config_location(args, 'accounts', i, *keys)}): {problem}")
    return problems
