"""Google: one account's authorised HTTP transport, API clients, retries and error mapping.

Calendar and Gmail both talk through google-api-python-client with its bundled discovery documents (no
discovery fetch), an ``httplib2`` transport carrying the configured timeout and CA bundle, and the
account's saved credentials (:mod:`providers.google.auth`), refreshed on expiry and written back.

Failures are mapped to :mod:`providers.base` errors: 429, 5xx, rate-limit 403s, timeouts and
connection resets are :class:`TransientError` (retried here with :func:`call_with_retry`, honouring
Retry-After, which the client library's own retry ignores); ``quotaExceeded`` backs the account off
for an hour; a refused refresh is :class:`AuthError`.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable
from functools import cache
from typing import Any

from providers.base import ProviderContext, ProviderError, TokenSource, TransientError
from providers.google.auth import GoogleTokenSource
from providers.google.settings import GoogleSettings
from providers.retry import RetryPolicy, call_with_retry, parse_retry_after

QUOTA_BACKOFF_SECONDS = 3600.0  # quotaExceeded: Google's abuse limit lasts hours; do not hammer
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg"}
_SCOPE_REASONS = {"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"}

class NotFound(ProviderError):
    """HTTP 404 from Google (a calendar, draft or thread that is not there)."""


class Gone(ProviderError):
    """HTTP 410: a sync token Google no longer accepts."""


class Rejected(TransientError):
    """A transient failure where Google certainly did not act (429, rate limit): safe to resend."""


# ---- the shared connection ----------------------------------------------------------------------


def endpoints(api_endpoint: str | None) -> tuple[str | None, str | None]:
    """Calendar and Gmail base URLs for a configured root such as ``https://proxy.example/``.

    The root stands for ``https://www.googleapis.com/`` (which serves both APIs): Calendar lives at
    ``{root}calendar/v3/`` and Gmail's paths start ``{root}gmail/v1/``. A root given with the
    ``calendar/v3/`` suffix is accepted too.
    """
    if not api_endpoint:
        return None, None
    root = api_endpoint.rstrip("/") + "/"
    if root.endswith("/calendar/v3/"):
        root = root[: -len("calendar/v3/")]
    return root + "calendar/v3/", root


@cache
def _http_class() -> type:
    """``httplib2.Http`` that never re-sends a POST by itself.

    httplib2 silently repeats a request, POST included, when a connection breaks before the answer
    (meant for idle keep-alive sockets the server closed). For ``drafts.create`` that could make a
    second draft, so a POST goes out once on a fresh connection, and a break is raised for our own
    retry, which looks for the draft by its key before creating it again.
    """
    import httplib2

    class OncePerPostHttp(httplib2.Http):  # type: ignore[misc]
        def _conn_request(self, conn: Any, request_uri: str, method: str, body: Any, headers: Any) -> Any:
            if method != "POST":
                return super()._conn_request(conn, request_uri, method, body, headers)
            if conn.sock is not None:
                conn.close()  # no stale keep-alive socket: a break now is a real one
            send = conn.request
            sent = False

            def once(*args: Any, **kwargs: Any) -> Any:
                nonlocal sent
                if sent:
                    raise ConnectionAbortedError("the connection broke after the request was sent")
                sent = True
                return send(*args, **kwargs)

            conn.request = once
            try:
                return super()._conn_request(conn, request_uri, method, body, headers)
            finally:
                del conn.request  # back to the class's method

    return OncePerPostHttp


class GoogleSession:
    """One account's authorised HTTP transport, API clients, and error mapping."""

    def __init__(
        self,
        conn: GoogleSettings,
        ctx: ProviderContext,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.account = ctx.account
        self.conn = conn
        self.keeper = GoogleTokenSource(conn, ctx)
        self.tokens: TokenSource = self.keeper
        self.policy = policy or RetryPolicy()
        self._sleep = ctx.sleep
        self._clock = ctx.clock
        self._http: Any = None
        self._services: dict[str, Any] = {}

    def service(self, name: str) -> Any:
        """The ``calendar`` v3 or ``gmail`` v1 client, built from the bundled discovery document."""
        if name not in self._services:
            from google_auth_httplib2 import AuthorizedHttp
            from googleapiclient.discovery import build

            if self._http is None:
                ca = str(self.conn.ca_bundle) if self.conn.ca_bundle else None
                raw = _http_class()(timeout=self.conn.timeout_seconds, ca_certs=ca)
                self._http = AuthorizedHttp(_bearer(self.tokens), http=raw)
            calendar_url, gmail_url = endpoints(self.conn.api_endpoint)
            url = calendar_url if name == "calendar" else gmail_url
            version = "v3" if name == "calendar" else "v1"
            self._services[name] = build(
                name,
                version,
                http=self._http,
                cache_discovery=False,
                static_discovery=True,
                client_options={"api_endpoint": url} if url else None,
            )
        return self._services[name]

    def sleep(self, seconds: float) -> None:
        """Wait between retries (the context's sleep)."""
        self._sleep(seconds)

    def close(self) -> None:
        """Close pooled connections."""
        if self._http is not None:
            try:
                self._http.close()
            except Exception:  # noqa: BLE001 - closing must never fail
                pass
        self._http = None
        self._services.clear()

    def call(self, make: Callable[[], Any], what: str, *, retry: bool = True) -> Any:
        """Execute the request ``make()`` builds; retried with backoff when ``retry`` (idempotent)."""

        def once() -> Any:
            return self.execute(make(), what)

        if not retry:
            return once()
        return call_with_retry(once, self.policy, what=what, sleep=self.sleep)

    def execute(self, request: Any, what: str) -> Any:
        """Send one request and translate every failure into a :mod:`providers.base` error."""
        from googleapiclient.errors import HttpError

        try:
            result = request.execute(num_retries=0)
            if isinstance(result, dict):
                return result
            if not result:  # 204 No Content (drafts.delete)
                return {}
            # The client hands back non-JSON bodies as text, e.g. a proxy's HTML page.
            raise ProviderError(f"{what}: unreadable answer (not JSON: {str(result)[:80]!r}); "
                                "check google.api_endpoint")
        except HttpError as exc:
            raise self._http_error(exc, what) from None
        except ssl.SSLCertVerificationError as exc:
            raise ProviderError(f"{what}: the server's TLS certificate is not trusted ({exc.verify_message}); "
                                "set google.ca_bundle if your network intercepts TLS") from None
        except TimeoutError:
            raise TransientError(f"{what}: no answer within {self.conn.timeout_seconds:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"{what}: connection failed ({_short(exc)})") from None
        except ValueError as exc:
            raise ProviderError(f"{what}: unreadable answer ({_short(exc)}); check google.api_endpoint") from None
        except Exception as exc:
            if type(exc).__module__.startswith("httplib2"):
                raise TransientError(f"{what}: connection failed ({_short(exc)})") from None
            raise

    def _http_error(self, exc: Any, what: str) -> ProviderError:
        status = int(getattr(exc.resp, "status", 0) or 0)
        message, reasons = _error_body(exc.content)
        retry_after = parse_retry_after(exc.resp.get("retry-after") if hasattr(exc.resp, "get") else None,
                                        self._clock())
        text = f"{what}: HTTP {status}" + (f" {message}" if message else "")
        if reasons & _QUOTA_REASONS:
            # quotaExceeded is one user's abuse limit; the daily limits are the project's (every user's)
            return TransientError(f"{text}; backing off", retry_after=max(retry_after or 0.0, QUOTA_BACKOFF_SECONDS),
                                  shared=bool(reasons & {"dailyLimitExceeded", "dailyLimitExceededUnreg"}))
        if status == 429 or (status == 403 and reasons & _RATE_REASONS):
            # "rateLimitExceeded" is the project's per-minute limit, for every user of the client;
            # "userRateLimitExceeded" (and a bare 429) is this user's own.
            return Rejected(text, retry_after=retry_after,
                            shared="rateLimitExceeded" in reasons and "userRateLimitExceeded" not in reasons)
        if status == 401:
            self.close()
            return self.keeper.auth_error("Google rejected the access token")
        if status == 403 and reasons & _SCOPE_REASONS:
            self.close()
            return self.keeper.auth_error("the saved authorisation lacks a permission this account needs")
        if status == 404:
            # Only Google's own "no such entity" is evidence that something is gone (a draft's fate is
            # read from it); a 404 page from a proxy or a wrong api_endpoint is just a failure.
            if "notFound" in reasons or _error_status(exc.content) == "NOT_FOUND":
                return NotFound(text)
            return ProviderError(f"{text}: not an answer from Google's API (check google.api_endpoint)")
        if status == 410:
            return Gone(text)
        if status == 408 or status >= 500:
            return TransientError(text, retry_after=retry_after)
        return ProviderError(text)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _error_status(content: Any) -> str:
    """The ``error.status`` of a Google error body (e.g. ``NOT_FOUND``), or '' when there is none."""
    try:
        data = json.loads(content.decode("utf-8") if isinstance(content, bytes) else content)
    except (ValueError, TypeError, AttributeError):
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    return str(error.get("status") or "") if isinstance(error, dict) else ""


def _error_body(content: Any) -> tuple[str, set[str]]:
    """Google's error JSON: ``{"error": {"code", "message", "errors": [{"reason"...}], "status"}}``."""
    try:
        data = json.loads(content.decode("utf-8") if isinstance(content, bytes) else content)
    except (ValueError, TypeError, AttributeError):
        return "", set()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "", set()
    reasons: set[str] = set()
    for item in error.get("errors") or ():
        if isinstance(item, dict) and item.get("reason"):
            reasons.add(str(item["reason"]))
    for item in error.get("details") or ():
        if isinstance(item, dict) and item.get("reason"):
            reasons.add(str(item["reason"]))
    return str(error.get("message") or "")[:300], reasons


def _bearer(tokens: TokenSource) -> Any:
    """google-auth credentials for ``AuthorizedHttp`` whose token comes from ``tokens``.

    Before each request the current token is asked for (the source refreshes it when it expires);
    after a 401 ``AuthorizedHttp`` calls ``refresh``, which asks for a new one.
    """
    from google.auth import credentials

    class FromTokenSource(credentials.Credentials):  # type: ignore[misc]
        def before_request(self, request: Any, method: str, url: str, headers: dict[str, str]) -> None:
            self.token = tokens.token()
            self.apply(headers)

        def refresh(self, request: Any) -> None:
            self.token = tokens.token(force_refresh=True)

    return FromTokenSource()


def session(ctx: ProviderContext) -> GoogleSession:
    """The account's one Google session, shared by its calendar source and its Gmail drafts."""
    conn = ctx.connection("google", GoogleSettings)
    return ctx.shared("google", lambda: GoogleSession(conn, ctx))
