"""Microsoft Graph: one account's authenticated HTTP client, with Prefer headers, a concurrency cap,
retries and error mapping.

One :class:`GraphClient` (one ``httpx.Client``) per account is shared by the calendar source and the
draft store. Every request carries ``Prefer: outlook.timezone="UTC"`` and ``IdType="ImmutableId"``;
at most four requests run at once (Outlook's per-mailbox limit). Salvage never calls ``/send``.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import httpx

from providers.base import AuthError, ProviderContext, ProviderError, TokenSource, TransientError
from providers.microsoft.auth import MsalTokenSource, connection
from providers.microsoft.settings import MicrosoftSettings
from providers.retry import RetryPolicy, call_with_retry, parse_retry_after

log = logging.getLogger(f"salvage.{__name__}")

MAX_CONCURRENT = 4  # Outlook allows four concurrent requests per app and mailbox
MAX_PAGES = 5000
BASE_PREFER = ('outlook.timezone="UTC"', 'IdType="ImmutableId"')
_QUERY_SAFE = "$,()'/:=@"


class GraphError(ProviderError):
    """A Graph error response that is neither an auth nor a transient failure."""

    def __init__(self, message: str, status: int, code: str = "", location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.location = location




class GraphClient:
    """Authenticated Graph requests with Prefer headers, a concurrency cap and error mapping."""

    def __init__(
        self,
        conn: MicrosoftSettings,
        ctx: ProviderContext,
        *,
        tokens: TokenSource | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.account = ctx.account
        self.conn = conn
        self.tokens: TokenSource = tokens or MsalTokenSource(conn, ctx)
        root = conn.graph_url.rstrip("/")
        parsed = urlparse(root)
        self.base = f"{root}/v1.0"
        self.origin = f"{parsed.scheme}://{parsed.netloc}".lower()
        self.retry = retry or RetryPolicy()
        self.sleep = ctx.sleep
        self.clock = ctx.clock
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.conn.timeout_seconds),
            verify=_tls_context(ctx.account, conn.ca_bundle),
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": ctx.http.user_agent},
        )
        self._lock = threading.Lock()
        self.request_count = 0
        self._folders: dict[str, str] = {}

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self._http.close()

    # -- one attempt ------------------------------------------------------------------------------

    def attempt(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        prefer: Iterable[str] = (),
    ) -> httpx.Response:
        """Send one request; map failures to AuthError / TransientError / GraphError."""
        self._check_url(url)
        if params:
            url = url + ("&" if "?" in url else "?") + urlencode(params, quote_via=quote, safe=_QUERY_SAFE)
        what = f"{method} {_short(url)}"
        response: httpx.Response | None = None
        for retry_auth in (False, True):
            token = self.tokens.token(force_refresh=retry_auth)
            headers = {"Authorization": f"Bearer {token}", "Prefer": ", ".join((*BASE_PREFER, *prefer))}
            try:
                with self._slots:
                    with self._lock:
                        self.request_count += 1
                    response = self._http.request(method, url, json=body, headers=headers)
            except httpx.TimeoutException:
                raise TransientError(f"Microsoft Graph: {what} timed out") from None
            except httpx.TransportError as exc:
                raise TransientError(f"Microsoft Graph: {what} failed: {type(exc).__name__}: {exc}") from None
            if response.status_code != 401 or retry_auth:
                break
            log.info("%s: Graph said 401; refreshing the access token", self.account)
        assert response is not None
        return self._check(response, what)

    def _check_url(self, url: str) -> None:
        # A next/delta link pointing elsewhere must never receive our bearer token.
        parsed = urlparse(url)
        if f"{parsed.scheme}://{parsed.netloc}".lower() != self.origin:
            raise ProviderError(f"Microsoft Graph returned a link to another host ({parsed.netloc}); refusing it")

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        code, message = _error_of(response)
        detail = f"{code}: {message}" if message else code or f"HTTP {status}"
        if status == 401:
            raise AuthError(f"account {self.account!r}: Microsoft Graph rejected the token ({detail}); "
                            f"run `salvage auth {self.account}`")
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
            raise TransientError(f"Microsoft Graph: {what}: HTTP {status} ({detail})", retry_after=retry_after)
        if status >= 500 or status == 408:
            raise TransientError(f"Microsoft Graph: {what}: HTTP {status} ({detail})")
        raise GraphError(f"Microsoft Graph: {what}: HTTP {status} ({detail})", status, code,
                         response.headers.get("Location"))

    # -- retried verbs ----------------------------------------------------------------------------

    def get(self, url: str, params: dict[str, str] | None = None, *, prefer: Iterable[str] = ()) -> dict[str, Any]:
        """GET with retries; returns the JSON object."""
        prefs = tuple(prefer)
        response = call_with_retry(lambda: self.attempt("GET", url, params=params, prefer=prefs),
                                   self.retry, what=f"GET {_short(url)}", sleep=self.sleep)
        return _json_object(response)

    def patch(self, url: str, body: dict[str, Any], *, prefer: Iterable[str] = ()) -> dict[str, Any]:
        """PATCH with retries (a whole-property replacement is idempotent)."""
        prefs = tuple(prefer)
        response = call_with_retry(lambda: self.attempt("PATCH", url, body=body, prefer=prefs),
                                   self.retry, what=f"PATCH {_short(url)}", sleep=self.sleep)
        return _json_object(response) if response.content else {}

    def delete(self, url: str) -> None:
        """DELETE with retries."""
        call_with_retry(lambda: self.attempt("DELETE", url), self.retry, what=f"DELETE {_short(url)}",
                        sleep=self.sleep)

    def post(self, url: str, body: Any = None, *, prefer: Iterable[str] = ()) -> dict[str, Any]:
        """POST once (creating calls are not blindly retried)."""
        return _json_object(self.attempt("POST", url, body=body, prefer=tuple(prefer)))

    def pages(self, url: str, params: dict[str, str] | None = None, *, prefer: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        """Items of a collection, following ``@odata.nextLink``."""
        page = self.get(url, params, prefer=prefer)
        for _ in range(MAX_PAGES):
            yield from values_of(page)
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            page = self.get(str(next_link), prefer=prefer)
        raise ProviderError(f"Microsoft Graph: {_short(url)} returned more than {MAX_PAGES} pages")

    def folder_id(self, well_known: str) -> str:
        """The id of a well-known mail folder (e.g. deleteditems), cached."""
        if well_known not in self._folders:
            data = self.get(self.url(f"/me/mailFolders/{well_known}"), {"$select": "id"})
            self._folders[well_known] = str(data.get("id", ""))
        return self._folders[well_known]


def _tls_context(account: str, ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """Trust only ``ca_bundle`` when set (a proxy's or a test CA), else the usual roots."""
    if ca_bundle is None:
        return True
    try:
        if ca_bundle.is_dir():
            return ssl.create_default_context(capath=str(ca_bundle))
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ProviderError(f"account {account!r}: microsoft.ca_bundle {ca_bundle}: {exc}") from None


def _short(url: str) -> str:
    parsed = urlparse(url)
    return parsed.path.split("/v1.0", 1)[-1] or parsed.path


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        return "", ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")[:300]
    if isinstance(error, str):
        return error, str(data.get("error_description") or "")[:300]
    return "", ""


def _json_object(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        raise ProviderError(f"Microsoft Graph returned something that is not JSON (HTTP {response.status_code})") from None
    if not isinstance(data, dict):
        raise ProviderError("Microsoft Graph returned JSON that is not an object")
    return data


def values_of(page: dict[str, Any]) -> list[dict[str, Any]]:
    values = page.get("value", [])
    if not isinstance(values, list):
        raise ProviderError("Microsoft Graph returned a collection whose 'value' is not a list")
    return [v for v in values if isinstance(v, dict)]


def client(ctx: ProviderContext) -> GraphClient:
    """The account's one Graph client, shared by its calendar source and its draft store."""
    conn = connection(ctx)
    return ctx.shared("microsoft", lambda: GraphClient(conn, ctx))


def text_of(value: Any) -> str:
    """A JSON value as a string ('' for null or a non-string)."""
    return value if isinstance(value, str) else ""


def mapping_of(value: Any) -> dict[str, Any]:
    """A JSON value as an object ({} for anything else)."""
    return value if isinstance(value, dict) else {}
