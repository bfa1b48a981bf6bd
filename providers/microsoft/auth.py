"""Microsoft sign-in with msal: device-code (default) or browser flow, a persisted token cache, silent refresh.

Salvage has no shared app registration: each user brings a client id (see docs/microsoft.md). Scopes
are Calendars.Read, Mail.ReadWrite and User.Read; msal adds openid/profile/offline_access itself.
Mail.Send is never requested, so Salvage cannot send mail from an Outlook mailbox.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from providers.base import AuthError, ProviderContext, ProviderError, TransientError
from providers.microsoft.settings import REGISTER_HINT, MicrosoftSettings

log = logging.getLogger(f"salvage.{__name__}")

BASE_SCOPES = ("Calendars.Read", "Mail.ReadWrite", "User.Read")
GLOBAL_LOGIN = "https://login.microsoftonline.com"
# Graph hosts of national clouds: their tokens must name the resource explicitly.
NATIONAL_GRAPH_HOSTS = frozenset(
    {"graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"}
)
# Error codes from the token endpoint that mean "the user must sign in again".
_REAUTH_ERRORS = frozenset(
    {
        "invalid_grant",
        "interaction_required",
        "login_required",
        "consent_required",
        "invalid_client",
        "unauthorized_client",
        "no_account",
        "no_tokens",
    }
)
_REFRESH_MARGIN = 300.0  # seconds before expiry at which a cached access token is renewed


_persistence_logged = False
_persistence_lock = threading.Lock()


def connection(ctx: ProviderContext) -> MicrosoftSettings:
    """The account's ``microsoft:`` section (the config validator guarantees it, with a client id)."""
    try:
        return ctx.connection("microsoft", MicrosoftSettings)
    except ProviderError:
        raise ProviderError(f"account {ctx.account!r}: a 'microsoft:' section is required. {REGISTER_HINT}") from None


def authority_url(conn: MicrosoftSettings) -> str:
    """The msal authority: ``authority`` if given, else the global login host plus ``tenant``."""
    if conn.authority:
        return conn.authority.rstrip("/")
    tenant = (conn.tenant or "common").strip().strip("/") or "common"
    return f"{GLOBAL_LOGIN}/{tenant}"


def scopes_for(conn: MicrosoftSettings) -> list[str]:
    """Graph scopes to ask for; national clouds need the resource prefix (e.g. graph.microsoft.us)."""
    host = (urlparse(conn.graph_url).hostname or "").lower()
    if host in NATIONAL_GRAPH_HOSTS:
        root = conn.graph_url.rstrip("/")
        return [f"{root}/{scope}" for scope in BASE_SCOPES]
    return list(BASE_SCOPES)


def token_cache_path(conn: MicrosoftSettings, ctx: ProviderContext) -> Path:
    """Where the account's msal token cache lives (config ``token_cache`` or the state dir)."""
    return conn.token_cache or ctx.state_dir / "tokens" / f"{ctx.account}.msal.json"


def http_session(conn: MicrosoftSettings) -> Any:
    """The requests session msal talks through: timeout and CA bundle fixed on every request.

    Passed per request because requests lets ``REQUESTS_CA_BUNDLE`` override a session-wide
    ``verify``, which would silently ignore ``microsoft.ca_bundle``.
    """
    import requests

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    verify: str | bool = str(conn.ca_bundle) if conn.ca_bundle else True
    session.request = functools.partial(  # type: ignore[method-assign]
        session.request, timeout=conn.timeout_seconds, verify=verify
    )
    return session


def _is_known_microsoft_host(host: str) -> bool:
    from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

    return host.lower() in WELL_KNOWN_AUTHORITY_HOSTS


def build_cache(path: Path) -> Any:
    """A msal-extensions token cache: the OS keyring where it works, else a 0600 file."""
    from msal_extensions import FilePersistence, PersistedTokenCache, build_encrypted_persistence

    global _persistence_logged
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        persistence = build_encrypted_persistence(str(path))
        kind = f"encrypted ({type(persistence).__name__})"
    except (ImportError, RuntimeError, ValueError, OSError) as exc:
        # Headless Linux has no Secret Service (or no PyGObject): fall back to a private file.
        persistence = FilePersistence(str(path))
        if path.exists():
            os.chmod(path, 0o600)
        kind = f"a plain file with mode 0600 (no keyring: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})"
    with _persistence_lock:
        if not _persistence_logged:
            log.info("Microsoft token cache: %s", kind)
            _persistence_logged = True
    return PersistedTokenCache(persistence)


class MsalTokenSource:
    """Access tokens for one account from msal's cache, refreshed silently; thread-safe.

    ``token()`` raises :class:`AuthError` when the user must run ``salvage auth NAME`` and
    :class:`TransientError` when the identity service cannot be reached.
    """

    def __init__(self, conn: MicrosoftSettings, ctx: ProviderContext) -> None:
        self.account = ctx.account
        self.conn = conn
        self.scopes = scopes_for(conn)
        self.cache_path = token_cache_path(conn, ctx)
        self._now = lambda: ctx.clock().timestamp()
        self._lock = threading.RLock()
        self._app: Any = None
        self._cache: Any = None
        self._token: str | None = None
        self._expires_at = 0.0

    @property
    def cache(self) -> Any:
        if self._cache is None:
            self._cache = build_cache(self.cache_path)
        return self._cache

    def app(self) -> Any:
        """The msal PublicClientApplication (built on first use: it fetches the OIDC metadata)."""
        with self._lock:
            if self._app is None:
                self._app = self._build_app()
            return self._app

    def _build_app(self) -> Any:
        import msal
        import requests

        authority = authority_url(self.conn)
        host = urlparse(authority).hostname or ""
        kwargs: dict[str, Any] = {}
        if not _is_known_microsoft_host(host):
            kwargs["instance_discovery"] = False  # e.g. a test fake or a private proxy
        try:
            return msal.PublicClientApplication(
                self.conn.client_id,
                authority=authority,
                token_cache=self.cache,
                http_client=http_session(self.conn),
                **kwargs,
            )
        except ValueError as exc:
            raise ProviderError(f"account {self.account!r}: Microsoft authority {authority!r}: {exc}") from None
        except (requests.RequestException, OSError) as exc:
            raise TransientError(
                f"account {self.account!r}: cannot reach the Microsoft sign-in service "
                f"({type(exc).__name__})"
            ) from None

    def token(self, *, force_refresh: bool = False) -> str:
        """A valid access token, from memory, the cache, or a silent refresh."""
        with self._lock:
            if not force_refresh and self._token and self._now() < self._expires_at - _REFRESH_MARGIN:
                return self._token
            result = self._silent(force_refresh)
            token = result.get("access_token")
            if not token:
                raise AuthError(f"account {self.account!r}: sign-in returned no access token; "
                                f"run `salvage auth {self.account}`")
            self._token = str(token)
            try:
                self._expires_at = self._now() + float(result.get("expires_in", 3600))
            except (TypeError, ValueError):
                self._expires_at = self._now() + 3600
            return self._token

    def _silent(self, force_refresh: bool) -> dict[str, Any]:
        import requests
        from msal.exceptions import MsalServiceError

        name = self.account
        app = self.app()
        try:
            accounts = app.get_accounts()
            if not accounts:
                raise AuthError(f"account {name!r}: not signed in to Microsoft; run `salvage auth {name}`")
            result = app.acquire_token_silent_with_error(self.scopes, accounts[0], force_refresh=force_refresh)
        except (requests.RequestException, OSError) as exc:
            raise TransientError(
                f"account {name!r}: cannot reach the Microsoft sign-in service ({type(exc).__name__})"
            ) from None
        except MsalServiceError as exc:  # msal raises (rather than returns) on a 5xx answer
            raise TransientError(f"account {name!r}: Microsoft sign-in failed ({exc})") from None
        if result is None:
            raise AuthError(f"account {name!r}: the stored Microsoft sign-in cannot be refreshed; "
                            f"run `salvage auth {name}`")
        if "error" in result:
            raise _token_error(name, result)
        return dict(result)


def _token_error(name: str, result: dict[str, Any]) -> ProviderError:
    """Map an msal error dict to AuthError (sign in again) or TransientError (try later)."""
    code = str(result.get("error", "unknown_error"))
    # The description carries AADSTS codes and trace ids, never tokens.
    description = str(result.get("error_description", "")).splitlines()[0][:200] if result.get("error_description") else ""
    text = f"{code}: {description}" if description else code
    if code in _REAUTH_ERRORS:
        return AuthError(f"account {name!r}: Microsoft refused the stored sign-in ({text}); run `salvage auth {name}`")
    return TransientError(f"account {name!r}: Microsoft sign-in failed ({text})")


def _flow_error(name: str, result: dict[str, Any], what: str) -> AuthError:
    code = result.get("error", "unknown_error")
    description = str(result.get("error_description", "")).splitlines()[0][:300] if result.get("error_description") else ""
    hint = ""
    if "AADSTS7000218" in description:
        hint = " — enable 'Allow public client flows' in your app registration (Authentication page)"
    elif "AADSTS700016" in description:
        hint = " — the client id is not known in this tenant; check microsoft.client_id and microsoft.tenant"
    return AuthError(f"account {name!r}: {what} failed: {code}: {description}{hint}")


def authenticate(ctx: ProviderContext, *, no_browser: bool, out: Callable[[str], None]) -> None:
    """Sign in interactively (device code by default) and store the tokens in the account's cache."""
    import requests
    from msal.exceptions import MsalServiceError

    conn = connection(ctx)
    source = MsalTokenSource(conn, ctx)
    app = source.app()
    login_hint = ctx.email
    try:
        if conn.auth_flow == "interactive" and not no_browser:
            result = _interactive(app, source.scopes, login_hint)
        else:
            flow = app.initiate_device_flow(scopes=source.scopes)
            if "user_code" not in flow:
                raise _flow_error(ctx.account, flow, "starting the device-code sign-in")
            out(str(flow.get("message") or f"Open {flow.get('verification_uri')} and enter {flow['user_code']}"))
            result = app.acquire_token_by_device_flow(flow)
    except requests.RequestException as exc:
        raise TransientError(f"account {ctx.account!r}: cannot reach the Microsoft sign-in service ({type(exc).__name__})") from None
    except MsalServiceError as exc:
        raise TransientError(f"account {ctx.account!r}: Microsoft sign-in failed ({exc}); try again later") from None
    if "access_token" not in result:
        raise _flow_error(ctx.account, result, "Microsoft sign-in")
    claims = result.get("id_token_claims") or {}
    home = _home_account_id(claims)
    for other in app.get_accounts():
        if home and other.get("home_account_id") != home:
            app.remove_account(other)  # one Microsoft identity per Salvage account
    who = claims.get("preferred_username") or claims.get("email") or claims.get("name") or "your Microsoft account"
    secure = "encrypted by the OS keyring" if getattr(source.cache, "is_encrypted", False) else "a file readable only by you"
    out(f"Signed in as {who}. Tokens are kept in {source.cache_path} ({secure}).")


def _home_account_id(claims: dict[str, Any]) -> str | None:
    oid, tid = claims.get("oid"), claims.get("tid")
    return f"{oid}.{tid}" if oid and tid else None


def _interactive(app: Any, scopes: list[str], login_hint: str | None) -> dict[str, Any]:
    try:
        result = app.acquire_token_interactive(scopes, prompt="select_account", login_hint=login_hint)
    except Exception as exc:  # noqa: BLE001 - msal/webbrowser raise assorted errors when no browser exists
        raise AuthError(f"the browser sign-in could not start ({exc}); run `salvage auth NAME --no-browser` "
                        "to use a device code instead") from None
    return dict(result)
