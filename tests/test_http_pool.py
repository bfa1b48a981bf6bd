"""One HTTP client per CA bundle for every account of a process, kept from pass to pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trustme

from daemon.config import parse_config
from daemon.engine.pipeline import Engine
from daemon.engine.state import StateStore
from providers.base import ProviderError
from providers.http import HttpPool
from providers.ics import IcsSource


def config_for(tmp_path: Path, calendars: list[dict[str, str]]) -> str:
    accounts = "\n".join(
        f"  - name: a{i}\n    calendar: {json.dumps(c)}\n    drafts: {{type: folder, path: drafts/a{i}}}"
        for i, c in enumerate(calendars))
    return (f"user: {{name: Sam Rivera, email: sam@example.com, timezone: Europe/Berlin}}\n"
            f"accounts:\n{accounts}\nstate: {{path: {tmp_path / 'state.sqlite3'}}}\n")


def test_the_pool_gives_one_client_per_bundle_and_remakes_a_closed_one(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    pool = HttpPool()
    system = pool.client()
    assert pool.client(None) is system
    mine = pool.client(bundle)
    assert mine is not system and pool.client(tmp_path / "." / "ca.pem") is mine and len(pool) == 2
    pool.close()
    assert system.is_closed and mine.is_closed
    assert pool.client() is not system


def test_a_bad_bundle_is_a_plain_provider_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    with pytest.raises(ProviderError, match="ca_bundle .* cannot be used"):
        HttpPool().client(bad)


def test_every_url_account_of_an_engine_shares_one_client_across_passes(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    calendars = [{"type": "ics", "url": f"https://calendar.invalid/{i}.ics"} for i in range(3)]
    calendars.append({"type": "ics", "url": "https://calendar.invalid/x.ics", "ca_bundle": str(bundle)})
    config = parse_config(config_for(tmp_path, calendars), tmp_path / "config.yaml")
    with StateStore.open(config.state_path) as store:
        engine = Engine(config, store)
        try:
            sources = [engine._source(a) for a in config.accounts]
            assert all(isinstance(s, IcsSource) for s in sources)
            clients = [s._http() for s in sources]  # type: ignore[attr-defined]
            assert clients[0] is clients[1] is clients[2] and clients[3] is not clients[0]
            engine.forget_connections()  # a config reload: the providers go, the clients stay
            again = engine._source(config.accounts[0])._http()  # type: ignore[attr-defined]
            assert again is clients[0] and not again.is_closed
        finally:
            engine.close()
        assert clients[0].is_closed and clients[3].is_closed


def test_at_most_a_few_requests_are_in_flight_to_one_host() -> None:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from providers import http

    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the base class's name
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            time.sleep(0.05)
            with lock:
                state["now"] -= 1
            body = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pool = HttpPool()
    client = pool.client()
    url = f"http://127.0.0.1:{server.server_address[1]}/cal.ics"
    bodies: list[bytes] = []

    def fetch() -> None:
        with client.stream("GET", url) as response:
            bodies.append(response.read())

    try:
        threads = [threading.Thread(target=fetch) for _ in range(3 * http.PER_HOST)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        pool.close()
        server.shutdown()
        server.server_close()
    assert len(bodies) == 3 * http.PER_HOST and all(b.startswith(b"BEGIN:VCALENDAR") for b in bodies)
    assert 1 < state["most"] <= http.PER_HOST
