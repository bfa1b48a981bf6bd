"""HTTP clients shared across accounts: one per distinct CA bundle, reused from pass to pass.

A recruiter's service may watch a thousand secret iCal addresses. Building an httpx client per
account loaded the CA bundle and a TLS context each time (17.7 ms of CPU and ~0.8 MiB apiece, and
again after every reconnect); one client per bundle keeps one TLS context and one connection pool
per host for all of them. httpx clients are safe to share between threads. Timeouts and
request-specific headers are given per request, so accounts with different settings share too.

At most :data:`PER_HOST` requests are in flight to one host at a time, whatever the number of
accounts polled at once: a thousand secret addresses on one calendar server, or on one API, are
fetched a few at a time, not in a burst of as many as there are worker threads.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import __version__
from providers.base import ProviderError

if TYPE_CHECKING:
    import httpx

USER_AGENT = f"Salvage/{__version__}"
# For all hosts together: enough for a burst of accounts polled at once, few enough to be polite.
MAX_CONNECTIONS, MAX_KEEPALIVE, KEEPALIVE_SECONDS = 32, 16, 60.0
PER_HOST = 8  # requests in flight to one host (scheme, host, port) at a time


def make_client(ca_bundle: Path | None) -> httpx.Client:
    """A client that trusts the system's CAs, or only ``ca_bundle`` when one is given."""
    import httpx  # here, not at import: a config of local files never loads it

    verify: ssl.SSLContext | bool = True
    if ca_bundle is not None:
        try:
            verify = ssl.create_default_context(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ProviderError(f"ca_bundle {ca_bundle} cannot be used: {exc}") from None
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE,
                          keepalive_expiry=KEEPALIVE_SECONDS)
    transport = _per_host(httpx.HTTPTransport(verify=verify, limits=limits), PER_HOST)
    return httpx.Client(verify=verify, follow_redirects=True, limits=limits, transport=transport,
                        headers={"User-Agent": USER_AGENT})


def _per_host(inner: httpx.BaseTransport, limit: int) -> httpx.BaseTransport:
    """``inner`` letting at most ``limit`` requests per host be in flight; a request holds its place
    until its response is read to the end or closed."""
    import httpx

    class _Body(httpx.SyncByteStream):
        def __init__(self, stream: Any, release: threading.Semaphore) -> None:
            self._stream, self._release = stream, release
            self._open = True

        def __iter__(self) -> Iterator[bytes]:
            yield from self._stream

        def close(self) -> None:
            if self._open:
                self._open = False
                try:
                    self._stream.close()
                finally:
                    self._release.release()

    class _PerHost(httpx.BaseTransport):
        def __init__(self) -> None:
            self._hosts: dict[tuple[str, str, int | None], threading.Semaphore] = {}
            self._lock = threading.Lock()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            key = (request.url.scheme, request.url.host, request.url.port)
            with self._lock:
                gate = self._hosts.setdefault(key, threading.BoundedSemaphore(limit))
            gate.acquire()
            try:
                response = inner.handle_request(request)
            except BaseException:
                gate.release()
                raise
            response.stream = _Body(response.stream, gate)
            return response

        def close(self) -> None:
            inner.close()

    return _PerHost()


class HttpPool:
    """One :class:`httpx.Client` per CA bundle for the whole process; closed with the engine."""

    def __init__(self) -> None:
        self._clients: dict[str | None, httpx.Client] = {}
        self._lock = threading.Lock()

    def client(self, ca_bundle: Path | None = None) -> httpx.Client:
        """The shared client for ``ca_bundle`` (None: the system's CAs), made on first use."""
        key = str(Path(ca_bundle).resolve()) if ca_bundle is not None else None
        with self._lock:
            found = self._clients.get(key)
            if found is None or found.is_closed:
                found = self._clients[key] = make_client(ca_bundle)
            return found

    def __len__(self) -> int:
        return len(self._clients)

    def close(self) -> None:
        """Close every client (they are made again on next use)."""
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()
