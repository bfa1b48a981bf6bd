"""Google sign-in: the installed-app OAuth flow, and the saved, self-refreshing credentials.

Tokens are google-auth's *authorized user* JSON, kept 0600 in the state dir. They are loaded with
the configured ``token_uri`` (google-auth's own file loader silently replaces it with Google's),
refreshed by the HTTP layer when they expire, and written back after a refresh. A refused refresh
(``invalid_grant``: revoked, expired, or a "Testing" app's 7-day limit) becomes :class:`AuthError`,
which marks only this account as needing ``salvage auth``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from google.oauth2.credentials import Credentials

from daemon import paths
from providers.base import AuthError, ProviderContext, ProviderError, TransientError
from providers.google.settings import GoogleSettings

log = logging.getLogger(f"salvage.{__name__}")

CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
GMAIL_COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_IMAP = "https://mail.google.com/"  # the only scope Gmail's IMAP accepts (XOAUTH2)
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
DOCS = "docs/google.md"
# Any of these also allows reading mail (a token made by another tool may carry a broader scope).
_READ_MAIL_SCOPES = frozenset(
    {GMAIL_READONLY, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/"}
)


def scopes_for(conn: GoogleSettings) -> list[str]:
    """The least scopes that work: read calendars, write drafts, and read mail when allowed."""
    scopes = [CALENDAR_READONLY, GMAIL_COMPOSE]
    if conn.read_mail:
        scopes.append(GMAIL_READONLY)
    if conn.imap_access:
        scopes.append(GMAIL_IMAP)
    return scopes


def connection(ctx: ProviderContext) -> GoogleSettings:
    """The account's ``google:`` section (the config validator guarantees it for google types)."""
    return ctx.connection("google", GoogleSettings)


def token_path(conn: GoogleSettings, ctx: ProviderContext) -> Path:
    """Where the account's Google token is kept."""
    return conn.token_file or ctx.state_dir / "tokens" / f"{ctx.account}.google.json"


def _scope_set(value: Any) -> set[str]:
    if not value:
        return set()
    return set(value.split()) if isinstance(value, str) else {str(v) for v in value}


def can_read_mail(creds: Credentials) -> bool:
    """True when the saved grant includes a scope that can search and read messages."""
    scopes = _scope_set(creds.scopes) | _scope_set(creds.granted_scopes)
    return not scopes or bool(scopes & _READ_MAIL_SCOPES)


class GoogleTokenSource:
    """The account's saved Google grant as a :class:`~providers.base.TokenSource`; thread-safe.

    Loads the credentials from the token file, refreshes them at the token endpoint when they expire
    or Google refuses them, and writes them back (0600) after a refresh.
    """

    def __init__(self, conn: GoogleSettings, ctx: ProviderContext) -> None:
        self.account = ctx.account
        self.conn = conn
        self.path = token_path(conn, ctx)
        self._credentials: Credentials | None = None
        self._saved_token: str | None = None
        self._lock = threading.RLock()
        self._request: Any = None

    def token(self, *, force_refresh: bool = False) -> str:
        """A valid access token: the saved one, or a refreshed one (saved) when expired or refused."""
        from google.auth import exceptions as auth_exceptions

        with self._lock:
            creds = self.credentials
            if creds.valid and not force_refresh:
                return str(creds.token)
            try:
                creds.refresh(self._transport())
            except auth_exceptions.RefreshError as exc:
                detail = refresh_detail(exc)
                if getattr(exc, "retryable", False):
                    raise TransientError(f"token refresh: Google's token endpoint failed ({detail})") from None
                raise self.auth_error(detail) from None
            except auth_exceptions.TransportError as exc:
                raise TransientError(f"token refresh: cannot reach Google's token endpoint "
                                     f"({type(exc).__name__}: {exc})"[:240]) from None
            if self.save_if_changed():  # `salvage auth` wrote a new grant meanwhile: use that one
                return self.token()
            return str(creds.token)

    def _transport(self) -> Any:
        """The refresh requests' transport: the configured timeout and CA bundle."""
        if self._request is None:
            import google_auth_httplib2
            import httplib2

            ca = str(self.conn.ca_bundle) if self.conn.ca_bundle else None
            self._request = google_auth_httplib2.Request(httplib2.Http(timeout=self.conn.timeout_seconds, ca_certs=ca))
        return self._request

    @property
    def credentials(self) -> Credentials:
        """The credentials, read from the token file on first use (or after :meth:`forget`)."""
        if self._credentials is None:
            self._credentials = load_credentials(self.path, self.conn, self.account)
            self._saved_token = self._credentials.token
        return self._credentials

    def save_if_changed(self) -> bool:
        """Persist a refreshed access token, 0600. True when the file was replaced meanwhile.

        If `salvage auth` wrote a new grant while this process held the old one, the file is left
        alone and the credentials are dropped, so the caller rebuilds its client from the new file.
        """
        creds = self._credentials
        if creds is None or not creds.token or creds.token == self._saved_token:
            return False
        on_disk = _saved_refresh_token(self.path)
        if on_disk is not None and on_disk != creds.refresh_token:
            log.info("%s: the Google token file was replaced (salvage auth?); switching to it", self.account)
            self.forget()
            return True
        try:
            paths.secret_file(self.path, creds.to_json())
        except OSError as exc:  # the token still works in memory; we only lose a refresh next start
            log.warning("%s: could not save the refreshed Google token to %s: %s", self.account, self.path, exc)
            return False
        self._saved_token = creds.token
        log.debug("%s: saved refreshed Google token", self.account)
        return False

    def forget(self) -> None:
        """Drop the loaded credentials so the next use re-reads the file (after `salvage auth`)."""
        self._credentials = None
        self._saved_token = None

    def auth_error(self, detail: str) -> AuthError:
        """The error that marks this account as needing ``salvage auth``."""
        self.forget()
        return AuthError(f"Google authorisation for account {self.account!r} failed ({detail}); "
                         f"run `salvage auth {self.account}`")


def refresh_detail(exc: Exception) -> str:
    """What a refused refresh says, e.g. "invalid_grant: Token has been expired or revoked."."""
    # args[0] is that text; args[1] (the response) is not shown. Neither carries a token.
    first = exc.args[0] if exc.args else ""
    return str(first)[:200] or type(exc).__name__


def _saved_refresh_token(path: Path) -> str | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    value = info.get("refresh_token") if isinstance(info, dict) else None
    return value if isinstance(value, str) else None


def load_credentials(path: Path, conn: GoogleSettings, account: str) -> Credentials:
    """Credentials from a saved authorized-user file, bound to the configured token endpoint."""
    hint = f"run `salvage auth {account}`"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuthError(f"account {account!r} is not authorised with Google yet (no {path}); {hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuthError(f"cannot read the Google token file {path} ({type(exc).__name__}); {hint}") from None
    if not isinstance(info, dict):
        raise AuthError(f"the Google token file {path} is not a JSON object; {hint}")
    try:
        creds = Credentials.from_authorized_user_info(info)
    except (ValueError, TypeError) as exc:
        # The message names missing fields only, never their values.
        raise AuthError(f"the Google token file {path} is incomplete ({exc}); {hint}") from None
    # from_authorized_user_info always uses Google's endpoint. Honour the configured one, else the
    # file's own (we wrote it with the endpoint in force at sign-in), else Google's.
    saved = info.get("token_uri")
    if not (isinstance(saved, str) and re.match(r"(?i)^https?://[^/\s]+", saved)):
        saved = None
    bound = creds.with_token_uri(conn.token_uri or saved or GOOGLE_TOKEN_URI)
    # with_token_uri copies everything but the expiry: without it an expired saved token looks valid,
    # is sent once and refused with a 401 at every start.
    bound.expiry = creds.expiry
    return bound


# ---- the interactive flow -----------------------------------------------------------------------


def _client_config(conn: GoogleSettings, account: str) -> dict[str, Any]:
    how = (f"create a Desktop-app OAuth client in Google Cloud, download its JSON and set "
           f"accounts[{account}].google.client_secrets to its path (see {DOCS})")
    if conn.client_secrets is None:
        raise ProviderError(f"account {account!r} has no google.client_secrets: {how}")
    path = conn.client_secrets
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProviderError(f"the Google OAuth client file {path} does not exist: {how}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProviderError(f"the Google OAuth client file {path} is not readable JSON ({type(exc).__name__}): {how}"
                            ) from None
    kind = next((k for k in ("installed", "web") if isinstance(data, dict) and isinstance(data.get(k), dict)), None)
    if kind is None:
        raise ProviderError(f"{path} is not an OAuth client file (no 'installed' section): {how}")
    section = dict(data[kind])
    missing = [k for k in ("client_id", "client_secret") if not section.get(k)]
    if missing:
        raise ProviderError(f"{path} lacks {', '.join(missing)}: {how}")
    section["auth_uri"] = conn.auth_uri or section.get("auth_uri") or GOOGLE_AUTH_URI
    # The same endpoint the saved token will be refreshed at (see load_credentials).
    section["token_uri"] = conn.token_uri or GOOGLE_TOKEN_URI
    return {kind: section}


def authenticate(
    ctx: ProviderContext,
    *,
    no_browser: bool,
    out: Callable[[str], None],
    timeout_seconds: float | None = 600,
) -> Path:
    """Run Google's installed-app sign-in for an account and save its token (0600); returns the path."""
    from google_auth_oauthlib.flow import InstalledAppFlow

    conn = connection(ctx)
    client_config = _client_config(conn, ctx.account)
    scopes = scopes_for(conn)
    if not no_browser and not _have_browser():
        out("No web browser found here; continuing as with --no-browser.")
        no_browser = True

    class _Flow(InstalledAppFlow):
        def authorization_url(self, **kwargs: Any) -> tuple[str, str]:
            url, state = super().authorization_url(**kwargs)
            if no_browser:
                out("Open this URL in a browser on any machine and allow access:")
            else:
                out("Your browser should open; if it does not, open this URL:")
            out(url)
            port = self.redirect_uri.rstrip("/").rpartition(":")[2]
            if no_browser:
                out(f"Google then redirects to {self.redirect_uri} — on another machine, forward that port "
                    f"first: ssh -L {port}:localhost:{port} THIS_HOST")
            return url, state

        def fetch_token(self, **kwargs: Any) -> Any:
            # Per request: requests lets REQUESTS_CA_BUNDLE override a session-wide setting.
            if conn.ca_bundle is not None:
                kwargs.setdefault("verify", str(conn.ca_bundle))
            return super().fetch_token(**kwargs)

    try:
        flow = _Flow.from_client_config(client_config, scopes=scopes)
    except ValueError as exc:
        raise ProviderError(f"the Google OAuth client file is not usable: {exc} (see {DOCS})") from None
    creds = _run_flow(flow, conn, no_browser=no_browser, timeout_seconds=timeout_seconds)
    granted = _scope_set(creds.granted_scopes or creds.scopes or scopes)
    missing = [s for s in (CALENDAR_READONLY, GMAIL_COMPOSE) if s not in granted]
    if missing:
        raise ProviderError(
            "Google did not grant " + ", ".join(s.rsplit("/", 1)[1] for s in missing)
            + "; run `salvage auth` again and tick every permission on the consent screen"
        )
    if conn.read_mail and not granted & _READ_MAIL_SCOPES:
        out("Note: reading mail (gmail.readonly) was not granted: drafts will not be threaded under the "
            "invitation, and a sent draft will be reported as deleted. Set read_mail: false to silence this.")
    if not creds.refresh_token:
        raise ProviderError("Google returned no refresh token; remove Salvage's access at "
                            "https://myaccount.google.com/permissions and run `salvage auth` again")
    path = token_path(conn, ctx)
    paths.secret_file(path, creds.to_json())
    out(f"Saved the Google token for {ctx.account!r} to {path} (readable only by you).")
    return path


def _have_browser() -> bool:
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def _run_flow(flow: Any, conn: GoogleSettings, *, no_browser: bool, timeout_seconds: float | None) -> Credentials:
    from google_auth_oauthlib.flow import WSGITimeoutError
    from oauthlib.oauth2.rfc6749.errors import InsecureTransportError, OAuth2Error
    from requests.exceptions import RequestException

    try:
        flow.run_local_server(
            host="localhost",
            port=conn.auth_port,
            open_browser=not no_browser,
            authorization_prompt_message=None,
            timeout_seconds=timeout_seconds,
            prompt="consent",  # always hand out a refresh token, also on re-authorisation
        )
    except WSGITimeoutError:
        raise ProviderError("no answer from the browser in time; run `salvage auth` again") from None
    except OSError as exc:
        if isinstance(exc, RequestException):
            raise ProviderError(f"could not reach Google's token endpoint: {exc}") from None
        raise ProviderError(f"cannot listen on localhost:{conn.auth_port} for the sign-in redirect ({exc}); "
                            "choose another google.auth_port") from None
    except InsecureTransportError:
        raise ProviderError("Google's sign-in endpoints must use https (google.auth_uri, google.token_uri); "
                            "a plain-http test server needs OAUTHLIB_INSECURE_TRANSPORT=1 in that test only"
                            ) from None
    except OAuth2Error as exc:
        raise ProviderError(f"Google refused the sign-in: {exc.error}"
                            + (f" ({exc.description})" if exc.description else "")) from None
    except Warning as exc:  # oauthlib raises a Warning when fewer scopes were granted than asked
        token = getattr(exc, "token", None)
        if not isinstance(token, Mapping):
            raise ProviderError(f"Google sign-in failed: {exc}") from None
        return _credentials_from_token(token, flow.client_config)
    return flow.credentials  # type: ignore[no-any-return]


def _credentials_from_token(token: Mapping[str, Any], client: Mapping[str, Any]) -> Credentials:
    """Credentials for a token response whose scope differs from the request (partial consent)."""
    scope = token.get("scope") or ()
    granted = scope.split() if isinstance(scope, str) else list(scope)
    return Credentials(
        token=token.get("access_token"),
        refresh_token=token.get("refresh_token"),
        token_uri=client["token_uri"],
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        scopes=granted,
        granted_scopes=granted,
    )
