"""Maps a config ``type`` to the provider that implements it, imported only when used.

Adding a provider is its module (or package) plus one line in :data:`PROVIDERS`, pointing at the
module's ``PROVIDER`` (a :class:`providers.base.Provider`: its section models, factories,
capabilities and sign-in). Importing this module installs the section lookup into
:mod:`daemon.config`, so a config is validated with each provider's own models.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from daemon import paths
from daemon.config import AccountConfig, Config, ProviderSection, install_provider_sections
from daemon.core.model import utc_now
from providers.base import (
    CalendarSource,
    DraftStore,
    HttpClients,
    Provider,
    ProviderContext,
    ProviderError,
    Role,
)
from providers.http import HttpPool

PROVIDERS: dict[str, str] = {
    "ics": "providers.ics:PROVIDER",
    "folder": "providers.folder:PROVIDER",
    "google": "providers.google:PROVIDER",
    "microsoft": "providers.microsoft:PROVIDER",
    "imap": "providers.imap:PROVIDER",
    "caldav": "providers.caldav:PROVIDER",
}

# The sections each provider declares (its Provider's calendar/drafts roles and account-level
# "connection"), so that listing the kinds of a role, for a message or a lookup of a name no provider
# has, imports no provider; tests/test_registry.py holds this to the providers themselves.
SECTIONS: dict[str, frozenset[str]] = {
    "ics": frozenset({"calendar"}),
    "folder": frozenset({"drafts"}),
    "google": frozenset({"calendar", "drafts", "connection"}),
    "microsoft": frozenset({"calendar", "drafts", "connection"}),
    "imap": frozenset({"drafts"}),
    "caldav": frozenset({"calendar"}),
}

_loaded: dict[str, Provider] = {}
default_sleep: Callable[[float], None] = time.sleep  # how providers wait between retries (tests replace it)


def provider(name: str) -> Provider | None:
    """The provider registered as ``name`` (its module imported on first use); None if unknown."""
    if name not in _loaded:
        target = PROVIDERS.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        spec = getattr(importlib.import_module(module_name), attr)
        if not isinstance(spec, Provider) or spec.name != name:
            raise TypeError(f"{target} is not the Provider named {name!r}")
        _loaded[name] = spec
    return _loaded[name]


class _Sections:
    """The section lookup :mod:`daemon.config` validates with (see config.ProviderSections).

    Only the providers a config names are imported (a config of ics and folder accounts never loads
    the Google or IMAP clients), and each answer is kept: validation asks for every account.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], type[ProviderSection] | None] = {}

    def section_model(self, role: str, kind: str) -> type[ProviderSection] | None:
        key = (role, kind)
        if key not in self._models:
            self._models[key] = self._look_up(role, kind)
        return self._models[key]

    @staticmethod
    def _look_up(role: str, kind: str) -> type[ProviderSection] | None:
        if role not in SECTIONS.get(kind, ()):
            return None
        spec = provider(kind)
        if spec is None:
            return None
        if role == "connection":
            return spec.connection
        found = spec.role(role)
        return found.settings if found is not None else None

    def kinds(self, role: str) -> list[str]:
        return sorted(name for name, roles in SECTIONS.items() if role in roles)


_SECTIONS = _Sections()
install_provider_sections(_SECTIONS)


def _role(kind: str, role: str) -> Role:
    spec = provider(kind)
    found = spec.role(role) if spec is not None else None
    if found is None:
        choices = ", ".join(_SECTIONS.kinds(role))
        raise ProviderError(f"unknown {role} type {kind!r}; choose one of: {choices}")
    return found


def _import(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProviderError(f"the provider {module_name} cannot be loaded: {exc}") from exc
    factory = getattr(module, attr)
    if not callable(factory):
        raise ProviderError(f"{target} is not callable")
    return factory  # type: ignore[no-any-return]


def context(
    account: AccountConfig,
    config: Config,
    *,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] | None = None,
    http_clients: HttpClients | None = None,
) -> ProviderContext:
    """The context a provider of ``account`` is given: identity, paths, clock, its sections.

    ``http_clients`` is the process's shared pool (the engine's); without one the context gets a
    pool of its own, closed with it.
    """
    own = http_clients is None
    addresses = set(config.user.addresses)
    if account.email:
        addresses.add(account.email.lower())
    ctx = ProviderContext(
        account.name,
        user_name=config.user.name,
        email=(account.email or config.user.email).lower(),
        addresses=frozenset(addresses),
        zone=config.user.zone,
        state_dir=paths.state_dir(),
        connections=account.connections,
        clock=clock,
        sleep=sleep if sleep is not None else default_sleep,
        http_clients=http_clients,
    )
    if own:
        ctx.http_clients = ctx.shared("http", HttpPool)
    return ctx


_IMPLEMENTS: set[tuple[type, type]] = set()


def _implements(value: object, protocol: type) -> bool:
    """``isinstance(value, protocol)``, asked once per class: a Protocol check costs tens of µs."""
    key = (type(value), protocol)
    if key in _IMPLEMENTS:
        return True
    if not isinstance(value, protocol):
        return False
    _IMPLEMENTS.add(key)
    return True


def open_calendar(account: AccountConfig, ctx: ProviderContext) -> CalendarSource:
    """The calendar source for an account."""
    kind = account.calendar.kind
    source = _import(_role(kind, "calendar").factory)(account.calendar, ctx)
    if not _implements(source, CalendarSource):
        raise ProviderError(f"{kind} calendar provider does not implement CalendarSource")
    return source


def open_drafts(account: AccountConfig, ctx: ProviderContext) -> DraftStore:
    """The draft store for an account."""
    kind = account.drafts.kind
    store = _import(_role(kind, "drafts").factory)(account.drafts, ctx)
    if not _implements(store, DraftStore):
        raise ProviderError(f"{kind} drafts provider does not implement DraftStore")
    return store


def auth_kinds(account: AccountConfig) -> list[str]:
    """The provider kinds of an account that need interactive authorisation."""
    kinds: list[str] = []
    # A sign-in section of its own (google:, microsoft:) also serves other providers of the account,
    # e.g. imap drafts signing in to Gmail with XOAUTH2.
    for kind in [account.calendar.kind, account.drafts.kind, *sorted(account.connections)]:
        spec = provider(kind) if kind in PROVIDERS else None
        if spec is not None and spec.authenticate and kind not in kinds:
            kinds.append(kind)
    return kinds


def authenticate(account: AccountConfig, config: Config, *, no_browser: bool, out: Callable[[str], None]) -> None:
    """Run the interactive authorisation for every provider of the account that needs it."""
    kinds = auth_kinds(account)
    if not kinds:
        out(f"account {account.name!r} needs no authorisation "
            f"({account.calendar.kind} + {account.drafts.kind})")
        return
    ctx = context(account, config)
    try:
        for kind in kinds:
            spec = provider(kind)
            assert spec is not None and spec.authenticate is not None
            _import(spec.authenticate)(ctx, no_browser=no_browser, out=out)
    finally:
        ctx.close()
