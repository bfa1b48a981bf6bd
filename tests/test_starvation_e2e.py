"""The real `salvage run`: a calendar server that never finishes answering cannot starve another account."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_service_e2e import POLL_SECONDS, SLACK, Home, day_at, interview, meeting, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

UTC = timezone.utc


class Trickle:
    """A loopback HTTP server that sends its headers, then one byte of body every 0.1 s, forever."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.requests = 0
        trickle = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                trickle.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar")
                self.end_headers()
                try:
                    self.wfile.write(b"BEGIN:VCALENDAR\r\n")
                    while not trickle.stop.wait(0.1):  # every read finds a byte: no read timeout fires
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/secret/calendar.ics"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path)
    try:
        yield h
    finally:
        for daemon in h.daemons:
            daemon.close()


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle()
    try:
        yield server
    finally:
        server.close()


def test_a_calendar_that_never_finishes_cannot_starve_another_account(home: Home, trickle: Trickle) -> None:
    # The stuck account comes first: with one worker for everyone, it would be polled first and
    # hold that worker for good.
    home.config.write_text(
        "user: {name: Alex Morgan, email: alex@example.com, timezone: UTC}\n"
        "state: {path: state/state.sqlite3}\n"
        "detection: {ignore_kinds: [odd_hour]}\n"
        "accounts:\n"
        "  - name: stuck\n"
        "    poll_minutes: 0.05\n"
        f"    calendar: {{type: ics, url: '{trickle.url}', timeout_seconds: 0.5}}\n"
        "    drafts: {type: folder, path: drafts-stuck}\n"
        "  - name: work\n"
        "    poll_minutes: 0.05\n"
        "    calendar: {type: ics, path: work.ics}\n"
        "    drafts: {type: folder, path: drafts}\n",
        encoding="utf-8",
    )
    home.calendar([interview("iv1", day_at(2, 14)), meeting("m1", day_at(2, 13))])
    daemon = home.start()
    started = time.monotonic()
    wait_for(lambda: trickle.requests >= 1, 10, "the stuck account never asked its server", process=daemon)

    # The other account drafts on time, while the stuck one's server is still trickling.
    took = wait_for(lambda: len(home.drafts()) == 1, 2 * POLL_SECONDS + 2 * SLACK, "the other account was starved",
                    process=daemon)
    assert took < 2 * POLL_SECONDS + 2 * SLACK and not trickle.stop.is_set()

    # `salvage status` shows the stuck one failing (its download has a deadline; its pass its own thread).
    def stuck_failing() -> bool:
        return any(a.get("name") == "stuck" and a.get("ok") is False for a in daemon.health().get("accounts", []))

    wait_for(stuck_failing, 45, "the stuck account was never shown failing", process=daemon)
    data = json.loads(home.salvage("status", "--format", "json").stdout)
    accounts = {a["name"]: a for a in data["accounts"]}
    assert "not sent within" in (accounts["stuck"]["error"] or "") and accounts["work"]["ok"]
    assert data["service"]["state"] == "running"
    # The health file stays fresh all along.
    updated = datetime.fromisoformat(daemon.health()["updated"])
    assert datetime.now(UTC) - updated < timedelta(seconds=2 * POLL_SECONDS + SLACK)
    assert time.monotonic() - started < 60
    assert len(home.drafts()) == 1  # and the other account made its draft exactly once
