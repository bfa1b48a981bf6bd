"""Microsoft sign-in through real msal against the loopback HTTPS identity fake."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.graph_fake import GraphFake, config_text, open_context, sign_in

from daemon.config import AccountConfig, Config, ConfigError, parse_config
from providers.base import AuthError, ProviderError, TransientError
from providers.microsoft import auth as microsoft_auth
from providers.microsoft.auth import MsalTokenSource, authority_url, build_cache, scopes_for
from providers.microsoft.settings import MicrosoftSettings


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    with GraphFake() as graph:
        yield graph


def load(fake: GraphFake, state: Path, **microsoft: Any) -> tuple[Config, AccountConfig]:
    config = parse_config(config_text(fake, state, **microsoft))
    return config, config.accounts[0]


def tokens(config: Config) -> MsalTokenSource:
    ctx = open_context(config)
    return MsalTokenSource(ctx.connection("microsoft", MicrosoftSettings), ctx)


def token_posts(fake: GraphFake, grant: str = "") -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/oauth2/v2.0/token"))


def test_device_code_sign_in_stores_a_private_token_cache(fake: GraphFake, tmp_path: Path) -> None:
    fake.pending_polls = 3
    lines = sign_in(fake, config_text(fake, tmp_path))
    assert "https://microsoft.com/devicelogin" in lines[0] and "enter the code" in lines[0]
    assert lines[-1].startswith("Signed in as alex@example.com")
    assert token_posts(fake) == 4  # three authorization_pending answers, then the tokens
    cache = tmp_path / "work.msal.json"
    assert cache.stat().st_mode & 0o777 == 0o600
    stored = json.loads(cache.read_text())
    assert stored["RefreshToken"] and stored["AccessToken"] and stored["Account"]


def test_only_read_calendar_and_read_write_mail_are_requested(fake: GraphFake, tmp_path: Path) -> None:
    sign_in(fake, config_text(fake, tmp_path))
    requested = set(fake.scopes_requested)
    assert {"Calendars.Read", "Mail.ReadWrite", "User.Read", "offline_access"} <= requested
    assert not any("send" in s.lower() for s in requested)
    assert not any(s.endswith(("ReadWrite.All", "Calendars.ReadWrite")) for s in requested)


def test_silent_tokens_come_from_the_cache_then_refresh(fake: GraphFake, tmp_path: Path) -> None:
    sign_in(fake, config_text(fake, tmp_path))
    config, _ = load(fake, tmp_path)
    source = tokens(config)
    before = token_posts(fake)
    first = source.token()
    assert first in fake.access_tokens and token_posts(fake) == before  # from the cache, no network
    assert source.token() == first
    fresh = source.token(force_refresh=True)
    assert fresh != first and fake.refreshes == 1


def test_short_lived_tokens_are_refreshed_silently(fake: GraphFake, tmp_path: Path) -> None:
    fake.token_lifetime = 60  # inside msal's five-minute refresh margin
    sign_in(fake, config_text(fake, tmp_path))
    config, _ = load(fake, tmp_path)
    source = tokens(config)
    assert source.token() in fake.access_tokens
    assert fake.refreshes >= 1


def test_a_refused_refresh_asks_for_salvage_auth(fake: GraphFake, tmp_path: Path) -> None:
    sign_in(fake, config_text(fake, tmp_path))
    config, _ = load(fake, tmp_path)
    fake.fail_refresh = True
    with pytest.raises(AuthError, match=r"invalid_grant.*salvage auth work"):
        tokens(config).token(force_refresh=True)


def test_not_signed_in(fake: GraphFake, tmp_path: Path) -> None:
    config, _ = load(fake, tmp_path)
    with pytest.raises(AuthError, match="not signed in.*salvage auth work"):
        tokens(config).token()


def test_identity_service_trouble_is_transient(fake: GraphFake, tmp_path: Path) -> None:
    sign_in(fake, config_text(fake, tmp_path))
    config, _ = load(fake, tmp_path)
    fake.add_fault("/oauth2/v2.0/token", 503, headers={"Retry-After": "0"},
                   body={"error": "temporarily_unavailable", "error_description": "AADSTS50000: try later"})
    with pytest.raises(TransientError, match="sign-in failed.*503"):
        tokens(config).token(force_refresh=True)


def test_unreachable_sign_in_service_is_transient(tmp_path: Path, fake: GraphFake) -> None:
    config, _ = load(fake, tmp_path, authority="https://127.0.0.1:9/fake-tenant")
    with pytest.raises(TransientError, match="cannot reach"):
        tokens(config).token()


def test_an_unknown_client_id_explains_itself(fake: GraphFake, tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="client id is not known"):
        sign_in(fake, config_text(fake, tmp_path, client_id="00000000-0000-0000-0000-000000000000"))


def test_missing_client_id_says_how_to_register_an_app(fake: GraphFake, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="client_id is not set.*Allow public client flows"):
        load(fake, tmp_path, client_id=None)  # `salvage config validate` says so already


def test_a_plain_http_authority_is_refused(fake: GraphFake, tmp_path: Path) -> None:
    config, _ = load(fake, tmp_path, authority="http://127.0.0.1:8080/tenant")
    with pytest.raises(ProviderError, match="https"):
        tokens(config).token()


def test_interactive_flow_falls_back_to_a_device_code_without_a_browser(fake: GraphFake, tmp_path: Path) -> None:
    lines = sign_in(fake, config_text(fake, tmp_path, auth_flow="interactive"))
    assert "enter the code" in lines[0]


def test_secrets_are_never_logged(fake: GraphFake, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sign_in(fake, config_text(fake, tmp_path))
    config, _ = load(fake, tmp_path)
    source = tokens(config)
    source.token(force_refresh=True)
    fake.fail_refresh = True
    with pytest.raises(AuthError):
        source.token(force_refresh=True)
    secrets = [*fake.access_tokens, *fake.refresh_tokens]
    assert secrets and caplog.records
    assert not any(secret in caplog.text for secret in secrets)


def test_cache_falls_back_to_a_0600_file_without_a_keyring(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="salvage.providers.microsoft")
    microsoft_auth._persistence_logged = False
    path = tmp_path / "tokens" / "old.msal.json"
    path.parent.mkdir()
    path.write_text("{}")
    os.chmod(path, 0o644)
    cache = build_cache(path)
    try:
        import gi  # noqa: F401

        pytest.skip("this machine has PyGObject; the keyring may be used")
    except ImportError:
        pass
    assert not cache.is_encrypted
    assert path.stat().st_mode & 0o777 == 0o600
    build_cache(path)
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "plain file with mode 0600" in caplog.records[0].getMessage()


def test_authority_and_scopes_for_national_clouds() -> None:
    assert authority_url(MicrosoftSettings(client_id="x")) == "https://login.microsoftonline.com/common"
    assert authority_url(MicrosoftSettings(client_id="x", tenant="organizations")).endswith("/organizations")
    gov = MicrosoftSettings(client_id="x", authority="https://login.microsoftonline.us/contoso.onmicrosoft.us/",
                              graph_url="https://graph.microsoft.us")
    assert authority_url(gov) == "https://login.microsoftonline.us/contoso.onmicrosoft.us"
    assert scopes_for(gov) == ["https://graph.microsoft.us/Calendars.Read", "https://graph.microsoft.us/Mail.ReadWrite",
                               "https://graph.microsoft.us/User.Read"]
    china = MicrosoftSettings(client_id="x", graph_url="https://microsoftgraph.chinacloudapi.cn")
    assert scopes_for(china)[0] == "https://microsoftgraph.chinacloudapi.cn/Calendars.Read"
    assert scopes_for(MicrosoftSettings(client_id="x")) == ["Calendars.Read", "Mail.ReadWrite", "User.Read"]
