"""`salvage auth` for Google: the real installed-app flow against the fake's OAuth endpoints.

The browser step is played by plain HTTP requests: open the printed authorization URL at the fake
(which answers with a redirect carrying a code, as Google does after consent), then follow that
redirect to the flow's loopback server.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes.google_fake import (
    ALL_SCOPES,
    CALENDAR_READONLY,
    GMAIL_COMPOSE,
    GMAIL_READONLY,
    GoogleFake,
    config_yaml,
    open_source,
)

from daemon.config import Config, parse_config
from providers import registry
from providers.base import ProviderError, Window
from providers.google.auth import authenticate, scopes_for

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture
def bundle(ca: Any, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def fake(ca: Any) -> Iterator[GoogleFake]:
    with GoogleFake(tls_ca=ca) as server:
        server.add_client()
        server.add_calendar("me@example.com", primary=True)
        yield server


def make_config(fake: GoogleFake, tmp_path: Path, bundle: Path | None, **kw: Any) -> Config:
    secrets_file = fake.client_secrets(tmp_path / "client_secret.json")
    return parse_config(config_yaml(fake, tmp_path, ca_bundle=bundle, client_secrets=secrets_file, **kw))


class Browser:
    """Plays the user's browser: consent at the fake, then the redirect to the loopback server."""

    def __init__(self, bundle: Path | None) -> None:
        self.context = ssl.create_default_context(cafile=str(bundle)) if bundle else None

    def consent(self, auth_url: str) -> str:
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kw: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=self.context))
        try:
            opener.open(auth_url, timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 302, exc.read()
            return str(exc.headers["Location"])
        raise AssertionError("the authorization endpoint did not redirect")

    def follow(self, location: str) -> str:
        with urllib.request.urlopen(location, timeout=5) as resp:  # the flow's http://localhost:PORT/
            return resp.read().decode()


def wait_for_url(lines: queue.Queue[str], prefix: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError("no authorization URL was printed")


def run(config: Config, fake: GoogleFake, bundle: Path | None, *, flow_timeout: float = 10) -> tuple[list[str], Any]:
    """Run authenticate() in a thread and play the browser; returns the printed lines and result."""
    lines: queue.Queue[str] = queue.Queue()
    printed: list[str] = []
    outcome: dict[str, Any] = {}

    def out(line: str) -> None:
        printed.append(line)
        lines.put(line)

    def target() -> None:
        try:
            outcome["path"] = authenticate(registry.context(config.accounts[0], config), no_browser=True, out=out,
                                           timeout_seconds=flow_timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        url = wait_for_url(lines, fake.auth_uri)
        browser = Browser(bundle)
        outcome["page"] = browser.follow(browser.consent(url))
        outcome["url"] = url
    finally:
        thread.join(timeout=15)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return printed, outcome


def test_auth_end_to_end_saves_a_working_token(fake: GoogleFake, tmp_path: Path, bundle: Path) -> None:
    config = make_config(fake, tmp_path, bundle)
    printed, outcome = run(config, fake, bundle)

    query = parse_qs(urlsplit(outcome["url"]).query)
    assert query["scope"][0].split() == [CALENDAR_READONLY, GMAIL_COMPOSE, GMAIL_READONLY]
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"][0].startswith("http://localhost:")
    assert any("ssh -L" in line for line in printed)
    path: Path = outcome["path"]
    assert path == tmp_path / "tokens" / "g.google.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["refresh_token"] in fake.refresh_tokens and saved["token_uri"] == fake.token_uri
    assert not any(saved["refresh_token"] in line or saved["token"] in line for line in printed)
    # The token drives the calendar source, refreshing through the same configured endpoint.
    source = open_source(config)
    window = Window(datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2026, 12, 2, tzinfo=timezone.utc))
    assert source.fetch(window, None).complete


def test_read_mail_false_asks_for_the_compose_scope_only(fake: GoogleFake, tmp_path: Path, bundle: Path) -> None:
    config = make_config(fake, tmp_path, bundle, read_mail=False)
    assert scopes_for(config.accounts[0].connection("google")) == [CALENDAR_READONLY, GMAIL_COMPOSE]  # type: ignore[arg-type]
    _, outcome = run(config, fake, bundle)
    assert parse_qs(urlsplit(outcome["url"]).query)["scope"][0].split() == [CALENDAR_READONLY, GMAIL_COMPOSE]


def test_partial_consent_without_mail_reading_is_saved_with_a_note(fake: GoogleFake, tmp_path: Path,
                                                                   bundle: Path) -> None:
    fake.consent_scopes = {CALENDAR_READONLY, GMAIL_COMPOSE}
    config = make_config(fake, tmp_path, bundle)
    printed, outcome = run(config, fake, bundle)
    assert any("gmail.readonly) was not granted" in line for line in printed)
    saved = json.loads(outcome["path"].read_text())
    assert set(saved["scopes"]) == {CALENDAR_READONLY, GMAIL_COMPOSE}


def test_partial_consent_without_compose_is_refused(fake: GoogleFake, tmp_path: Path, bundle: Path) -> None:
    fake.consent_scopes = {CALENDAR_READONLY, GMAIL_READONLY}
    config = make_config(fake, tmp_path, bundle)
    with pytest.raises(ProviderError, match="did not grant gmail.compose"):
        run(config, fake, bundle)
    assert not (tmp_path / "tokens" / "g.google.json").exists()


def test_plain_http_token_endpoint_is_refused_unless_the_test_allows_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with GoogleFake() as server:
        server.add_client()
        config = make_config(server, tmp_path, None)
        monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
        with pytest.raises(ProviderError, match="must use https"):
            authenticate(registry.context(config.accounts[0], config), no_browser=True, out=print, timeout_seconds=1)
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # only here, in the test
        _, outcome = run(config, server, None)
        assert outcome["path"].exists()


def test_client_file_problems_are_plain_errors(fake: GoogleFake, tmp_path: Path) -> None:
    base = config_yaml(fake, tmp_path)
    config = parse_config(base)
    with pytest.raises(ProviderError, match="no google.client_secrets.*Desktop-app OAuth client.*docs/google.md"):
        authenticate(registry.context(config.accounts[0], config), no_browser=True, out=print)
    for content, message in (
        (None, "does not exist"),
        ("{not json", "not readable JSON"),
        ('{"web2": {}}', "not an OAuth client file"),
        ('{"installed": {"client_id": "x"}}', "lacks client_secret"),
    ):
        path = tmp_path / "client.json"
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(content)
        config = parse_config(config_yaml(fake, tmp_path, client_secrets=path))
        with pytest.raises(ProviderError, match=message):
            authenticate(registry.context(config.accounts[0], config), no_browser=True, out=print)


def test_unknown_client_and_timeout(fake: GoogleFake, tmp_path: Path, bundle: Path) -> None:
    config = make_config(fake, tmp_path, bundle)
    fake.clients["salvage-test.apps.googleusercontent.com"] = "rotated-secret"  # the code exchange fails
    lines: list[str] = []
    with pytest.raises(ProviderError, match="invalid_client"):
        run(config, fake, bundle)
    with pytest.raises(ProviderError, match="no answer from the browser"):
        authenticate(registry.context(config.accounts[0], config), no_browser=True, out=lines.append, timeout_seconds=0.3)


def test_without_a_browser_the_url_is_printed(fake: GoogleFake, tmp_path: Path, bundle: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    def no_browser(*args: Any) -> Any:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "get", no_browser)  # a headless machine
    config = make_config(fake, tmp_path, bundle)
    lines: list[str] = []
    with pytest.raises(ProviderError, match="no answer from the browser"):
        authenticate(registry.context(config.accounts[0], config), no_browser=False, out=lines.append, timeout_seconds=0.2)
    assert lines[0].startswith("No web browser found") and any(line.startswith(fake.auth_uri) for line in lines)


def test_registry_runs_google_auth_once_for_a_google_account(fake: GoogleFake, tmp_path: Path) -> None:
    config = parse_config(config_yaml(fake, tmp_path))
    assert registry.auth_kinds(config.accounts[0]) == ["google"]


@pytest.mark.slow
def test_salvage_auth_command_end_to_end(fake: GoogleFake, tmp_path: Path, bundle: Path) -> None:
    config_path = tmp_path / "config.yaml"
    secrets_file = fake.client_secrets(tmp_path / "client_secret.json")
    with socket.socket() as probe:  # a fixed auth_port, as for SSH port forwarding
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config_path.write_text(config_yaml(fake, tmp_path, ca_bundle=bundle, client_secrets=secrets_file,
                                       extra=f"      auth_port: {port}\n"))
    env = {**os.environ, "SALVAGE_STATE_DIR": str(tmp_path / "state"), "SALVAGE_CONFIG_DIR": str(tmp_path)}
    env.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "auth", "--config", str(config_path), "--no-browser", "g"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    printed: list[str] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            printed.append(line)
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        url = wait_for_url(lines, fake.auth_uri, timeout=30)
        assert parse_qs(urlsplit(url).query)["redirect_uri"] == [f"http://localhost:{port}/"]
        browser = Browser(bundle)
        location = browser.consent(url)
        assert location.startswith(f"http://localhost:{port}/?")
        page = browser.follow(location)
        assert "flow has completed" in page
        assert proc.wait(timeout=30) == 0, proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    path = tmp_path / "tokens" / "g.google.json"
    token = json.loads(path.read_text())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert set(token["scopes"]) == set(ALL_SCOPES) and token["refresh_token"] in fake.refresh_tokens
    assert token["token_uri"] == fake.token_uri
    assert fake.count("authorize") == 1 and fake.count("token") == 1
    output = "".join(printed)
    assert f"ssh -L {port}:localhost:{port}" in output and str(path) in output
    assert token["refresh_token"] not in output and token["token"] not in output
