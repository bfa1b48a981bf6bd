"""`salvage drafts`: the live drafts and where they are; `salvage drafts show ID`: one, as its recipient reads it."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from daemon.cli.common import UserError, config_from, dump_json, parse_now
from daemon.cli.output import _escape, fmt_instant, hanging
from daemon.config import AccountConfig, Config
from daemon.core.model import DraftState
from daemon.engine.state import LIVE_STATES, DraftRecord, StateStore

FATE = {
    DraftState.PENDING: "being created",
    DraftState.UNTOUCHED: "untouched",
    DraftState.EDITED: "edited by you",
}
WHERE = {"google": "Gmail Drafts", "microsoft": "Outlook Drafts"}


def draft_id(record: DraftRecord) -> str:
    """The short id shown for a draft (the start of its X-Salvage-Key)."""
    return record.key[:8]


def draft_file(record: DraftRecord, config: Config) -> Path | None:
    """The ``.eml`` file of a draft kept in a folder, or None for a mailbox draft."""
    account = _account(config, record.account)
    folder = getattr(account.drafts, "path", None) if account else None
    if folder is None or record.ref is None:
        return None
    return Path(folder) / record.ref.id


def where(record: DraftRecord, config: Config, *, folder: Path | None = None) -> str:
    """Where a person finds the draft: a file (its name alone when it is in ``folder``), or a mailbox."""
    path = draft_file(record, config)
    if path is not None:
        return path.name if folder is not None and path.parent == folder else str(path)
    account = _account(config, record.account)
    kind = account.drafts.kind if account else "?"
    return f"{WHERE.get(kind, kind)} of account {record.account}"


def _account(config: Config, name: str) -> AccountConfig | None:
    return next((a for a in config.accounts if a.name == name), None)


def _titles(config: Config, store: StateStore, now: datetime) -> dict[str, str]:
    """Interview titles by occurrence key, from what the state store last saw (no calendar is read)."""
    from daemon.engine.pipeline import Engine

    try:
        engine = Engine(config, store)
        try:
            return {e.occurrence_key: e.title for e in engine.evaluate(now).events}
        finally:
            engine.close()
    except Exception:  # noqa: BLE001 - titles are a nicety; the list must show without them
        return {}


def _live(store: StateStore) -> list[DraftRecord]:
    return sorted(store.drafts(states=LIVE_STATES), key=lambda d: (d.event_start or d.created, d.account, d.kind.value))


def drafts_command(args: argparse.Namespace, out: Console) -> int:
    """List the live drafts, or show one."""
    config = config_from(args)
    if not config.state_path.exists():
        raise UserError("no drafts yet: Salvage has not run with this config (try `salvage run --once`)")
    with StateStore.open(config.state_path) as store:
        if args.drafts_command == "show":
            return _show(args, config, store, out)
        drafts = _live(store)
        # Titles as the last pass saw them: evaluate at the latest draft change, not today.
        seen = max((d.updated for d in drafts), default=None)
        titles = _titles(config, store, seen or parse_now(None))
    if args.format == "json":
        dump_json([_json(d, config, titles) for d in drafts])
        return 0
    if not drafts:
        out.print("No live drafts.")
        return 0
    files = {p.parent for d in drafts if (p := draft_file(d, config)) is not None}
    folder = next(iter(files)) if len(files) == 1 else None
    if folder is not None:
        out.print(f"Drafts folder: {_escape(str(folder))}")
    if out.width >= 100:
        out.print(_table(drafts, config, titles, folder))
    else:
        for d in drafts:
            out.print(f"[bold]{draft_id(d)}[/]  {d.kind.value} → {_escape(d.recipients)}  [dim]({FATE[d.state]})[/]")
            title = titles.get(d.occurrence_key)
            lines = [f"for {_escape(title)!r}"] if title else []
            for line in (*lines, f"“{_escape(d.subject)}”", f"in {_escape(where(d, config, folder=folder))}"):
                for part in hanging(out, out.render_str(line), out.width, indent=4):
                    out.print(part, soft_wrap=True)
    out.print("`salvage drafts show ID` prints one as its recipient will read it.")
    return 0


def _table(drafts: list[DraftRecord], config: Config, titles: dict[str, str], folder: Path | None) -> Table:
    tz = config.user.zone
    table = Table(title="Live drafts", title_justify="left")
    table.add_column("id", style="dim", no_wrap=True)
    table.add_column("interview", ratio=2, overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("to", ratio=1, overflow="fold")
    table.add_column("fate", no_wrap=True)
    table.add_column("where", ratio=2, overflow="fold")
    for d in drafts:
        when = f"\n[dim]{fmt_instant(d.event_start, tz)}[/]" if d.event_start else ""
        title = titles.get(d.occurrence_key)
        table.add_row(draft_id(d), _escape(title or d.subject) + when, d.kind.value,
                      _escape(d.recipients), FATE[d.state], _escape(where(d, config, folder=folder)))
    return table


def _json(d: DraftRecord, config: Config, titles: dict[str, str]) -> dict[str, Any]:
    return {
        "id": draft_id(d),
        "key": d.key,
        "account": d.account,
        "interview": titles.get(d.occurrence_key),
        "occurrence_key": d.occurrence_key,
        "kind": d.kind.value,
        "to": d.recipients,
        "subject": d.subject,
        "fate": d.state.value,
        "where": where(d, config),
    }


def _find(store: StateStore, wanted: str) -> DraftRecord:
    matches = [d for d in store.drafts() if d.key == wanted or d.key.startswith(wanted)]
    live = [d for d in matches if d.state in LIVE_STATES]
    if len(wanted) < 4 or not matches:
        raise UserError(f"no draft has the id {wanted!r}; `salvage drafts` lists them")
    if len(live) == 1:
        return live[0]
    if len(matches) > 1:
        raise UserError(f"{wanted!r} is the start of {len(matches)} drafts' ids; give more of it")
    return matches[0]


def _show(args: argparse.Namespace, config: Config, store: StateStore, out: Console) -> int:
    from providers.mime import parse_message, plain_body

    record = _find(store, args.id)
    path = draft_file(record, config)
    if record.state not in LIVE_STATES:
        out.print(f"[yellow]This draft is no longer live: {record.state.value}.[/]")
    if path is None:
        out.print(f"Draft {draft_id(record)} ({record.kind.value}) to {_escape(record.recipients)}: "
                  f"“{_escape(record.subject)}”, in your {_escape(where(record, config))}. Open it there to read it.")
        return 0
    try:
        message = parse_message(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"the draft's file {path} is gone (deleted or sent since the last pass)") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    for name in ("From", "To", "Cc", "Subject", "Date"):
        if message[name]:
            out.print(f"[bold]{name}:[/] {_escape(str(message[name]))}")
    out.print("")
    out.print(plain_body(message).rstrip("\n"), markup=False)
    out.print("")
    out.print(f"[dim]{FATE.get(record.state, record.state.value)} · {_escape(str(path))}[/]")
    return 0
