"""Maps a config ``type`` to the provider that implements it, imported only when used.

Adding a provider is one module plus one line in each table that applies. A factory takes
``(account: AccountConfig, config: Config)`` and returns the object; an auth function takes
``(account, config, *, no_browser: bool, out: Callable[[str], None])`` and stores credentials.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from daemon.config import AccountConfig, Config
from providers.base import CalendarSource, DraftStore, ProviderError

CALENDARS: dict[str, str] = {
    "ics": "providers.ics:open_calendar",
    "google": "providers.google.calendar:open_calendar",
    "microsoft": "providers.microsoft.calendar:open_calendar",
}
DRAFTS: dict[str, str] = {
    "folder": "providers.folder:open_drafts",
    "google": "providers.google.gmail:open_drafts",
    "microsoft": "providers.microsoft.mail:open_drafts",
    "imap": "providers.imap:open_drafts",
}
AUTH: dict[str, str] = {
    "google": "providers.google.auth:authenticate",
    "microsoft": "providers.microsoft.auth:authenticate",
}


def _load(table: dict[str, str], kind: str, what: str) -> Callable[..., Any]:
    target = table.get(kind)
    if target is None:
        raise ProviderError(f"unknown {what} type {kind!r}; choose one of: {', '.join(sorted(table))}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProviderError(f"the {kind} {what} provider cannot be loaded: {exc}") from exc
    factory = getattr(module, attr)
    if not callable(factory):
        raise ProviderError(f"{target} is not callable")
    return factory  # type: ignore[no-any-return]


def open_calendar(account: AccountConfig, config: Config) -> CalendarSource:
    """The calendar source for an account."""
    source = _load(CALENDARS, account.calendar.type, "calendar")(account, config)
    if not isinstance(source, CalendarSource):
        raise ProviderError(f"{account.calendar.type} calendar provider does not implement CalendarSource")
    return source


def open_drafts(account: AccountConfig, config: Config) -> DraftStore:
    """The draft store for an account."""
    store = _load(DRAFTS, account.drafts.type, "drafts")(account, config)
    if not isinstance(store, DraftStore):
        raise ProviderError(f"{account.drafts.type} drafts provider does not implement DraftStore")
    return store


def auth_kinds(account: AccountConfig) -> list[str]:
    """The provider kinds of an account that need interactive authorisation."""
    kinds: list[str] = []
    for kind in (account.calendar.type, account.drafts.type):
        if kind in AUTH and kind not in kinds:
            kinds.append(kind)
    return kinds


def authenticate(account: AccountConfig, config: Config, *, no_browser: bool, out: Callable[[str], None]) -> None:
    """Run the interactive authorisation for every provider of the account that needs it."""
    kinds = auth_kinds(account)
    if not kinds:
        out(f"account {account.name!r} needs no authorisation ({account.calendar.type} + {account.drafts.type})")
        return
    for kind in kinds:
        _load(AUTH, kind, "auth")(account, config, no_browser=no_browser, out=out)
