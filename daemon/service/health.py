"""The health file the service keeps beside its state.

The running service rewrites ``<state dir>/health.json`` (atomically) after every job and at least
once a minute (a heartbeat from its worker thread), and once more, with ``"state": "stopped"``,
when it exits cleanly. ``salvage status`` reads it to tell whether the service is alive; monitors
can read it directly (its shape is documented in ``docs/service.md``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.config import AccountConfig, Config
from daemon.engine.state import AccountStatus, StateStore
from daemon.paths import private_dir, remove_stale_temp, write_private
from daemon.service.lock import pid_alive

HEALTH_FILE = "health.json"
HEALTH_VERSION = 1
# The service's heartbeat writes the health file every minute; older than this means it is stuck.
STALE_AFTER = timedelta(minutes=5)


def health_path(config: Config) -> Path:
    """``health.json`` in the directory of the state file."""
    return config.state_path.parent / HEALTH_FILE


_CLEANED: set[Path] = set()


def write_health(path: Path, data: dict[str, Any]) -> None:
    """Replace the health file atomically (a reader never sees half a file)."""
    private_dir(path.parent)
    if path not in _CLEANED:  # once per process: a temp file a crashed writer left behind
        _CLEANED.add(path)
        remove_stale_temp(path.parent, re.compile(rf"\.{re.escape(path.name)}\.\d+\.tmp"))
    # 0600 whoever made the directory: it lists the accounts and their errors.
    write_private(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_health(path: Path) -> dict[str, Any] | None:
    """The health file's content, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def account_json(account: AccountConfig, status: AccountStatus | None) -> dict[str, Any]:
    """One account's health, as shown by status and written to the health file."""

    def t(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    failing = status is not None and status.error is not None
    return {
        "name": account.name,
        "enabled": account.enabled,
        "calendar": account.calendar.kind,
        "drafts": account.drafts.kind,
        "ok": not failing,
        "needs_auth": bool(status and status.needs_auth),
        "error": status.error if status else None,
        "error_since": t(status.error_since) if status else None,
        "failures": status.failures if status else 0,
        "last_poll": t(status.last_poll) if status else None,
        "last_success": t(status.last_success) if status else None,
        "next_poll": t(status.next_poll) if status else None,
        "problems": list(status.problems) if status else [],
    }


def accounts_health(config: Config, store: StateStore) -> list[dict[str, Any]]:
    known = {s.name: s for s in store.accounts()}
    return [account_json(a, known.get(a.name)) for a in config.accounts]


@dataclass(frozen=True)
class ServiceState:
    """What the health file says about the service, checked against the process table and clock."""

    state: str  # running, state-error, stopped, not-responding, dead, never-run
    pid: int | None
    updated: datetime | None
    detail: str

    @property
    def problem(self) -> bool:
        return self.state in ("not-responding", "dead", "state-error")


def service_state(health: dict[str, Any] | None, now: datetime) -> ServiceState:
    """Interpret a health file at ``now``."""
    if health is None:
        return ServiceState("never-run", None, None, "no health file: the service has not run with this state")
    pid = health.get("pid") if isinstance(health.get("pid"), int) else None
    updated = instant(health.get("updated"))
    if health.get("state") == "stopped":
        return ServiceState("stopped", pid, updated, "stopped cleanly")
    if pid is None or not pid_alive(pid):
        return ServiceState("dead", pid, updated, "not running: it was killed or crashed (no clean stop)")
    if updated is None or now - updated > STALE_AFTER:
        return ServiceState("not-responding", pid, updated, "running but its heartbeat stopped")
    if isinstance(health.get("state_error"), str):
        return ServiceState("state-error", pid, updated, f"running, but {health['state_error']} (it keeps trying)")
    return ServiceState("running", pid, updated, "running")


def instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None
