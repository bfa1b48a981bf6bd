from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.config import ConfigError, json_schema, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """
user:
  name: Alex
  email: Alex@Example.com
  timezone: Europe/Berlin
accounts:
  - name: files
    calendar: {type: ics, path: cal.ics}
    drafts: {type: folder, path: out}
"""


def test_example_config_validates() -> None:
    config = load_config(ROOT / "config.example.yaml")
    assert [a.name for a in config.accounts] == ["personal", "work-gmail", "work-outlook", "fastmail", "gmail-imap",
                                                "work-calendar-home-mail"]
    assert config.user.zone.key == "Europe/London"


def test_minimal_config_defaults_and_relative_paths(tmp_path: Path) -> None:
    source = tmp_path / "config.yaml"
    config = parse_config(MINIMAL, source)
    assert config.user.email == "alex@example.com"
    assert config.working_hours.days == ["mon", "tue", "wed", "thu", "fri"]
    account = config.accounts[0]
    assert account.calendar.path == tmp_path / "cal.ics"  # type: ignore[union-attr]
    assert account.drafts.path == tmp_path / "out"  # type: ignore[union-attr]


def test_every_problem_is_reported_with_key_path_and_line(tmp_path: Path) -> None:
    text = """user:
  name: Alex
  email: not-an-address
  timezone: Mars/Olympus
slots:
  count: 0
accounts:
  - name: a
    calendar: {type: carrier-pigeon}
    drafts: {type: folder, path: x}
    colour: blue
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "c.yaml")
    problems = info.value.problems
    joined = "\n".join(problems)
    assert "user.email" in joined and "c.yaml:3" in joined
    assert "user.timezone" in joined and "Mars/Olympus" in joined
    assert "slots.count" in joined and "c.yaml:6" in joined
    assert "accounts[0].calendar" in joined and "carrier-pigeon" in joined
    assert "accounts[0].colour" in joined and "unknown key" in joined
    assert len(problems) == 5


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("user:\n  name: [unclosed\n", tmp_path / "c.yaml")
    assert "c.yaml:" in info.value.problems[0] and "YAML" in info.value.problems[0]


def test_env_interpolation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SALVAGE_TEST_URL", "https://cal.example/secret.ics")
    text = MINIMAL.replace("{type: ics, path: cal.ics}", "{type: ics, url: '${SALVAGE_TEST_URL}'}")
    config = parse_config(text, tmp_path / "c.yaml")
    assert config.accounts[0].calendar.url == "https://cal.example/secret.ics"  # type: ignore[union-attr]
    monkeypatch.delenv("SALVAGE_TEST_URL")
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "c.yaml")
    assert "SALVAGE_TEST_URL is not set" in info.value.problems[0]
    default = MINIMAL.replace("name: Alex", "name: ${SALVAGE_TEST_NAME:-Sam}")
    assert parse_config(default).user.name == "Sam"


def test_provider_sections_required(tmp_path: Path) -> None:
    text = MINIMAL.replace("{type: ics, path: cal.ics}", "{type: google}")
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert "google:" in info.value.problems[0]


def test_duplicate_account_names() -> None:
    text = MINIMAL + """  - name: files
    calendar: {type: ics, path: b.ics}
    drafts: {type: folder, path: out2}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert "two accounts are named 'files'" in info.value.problems[0]


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("user: {name: A, email: a@b.co, timezone: Nowhere/Land}\n")
    assert main(["config", "validate", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Nowhere/Land" in err and "Traceback" not in err
    assert main(["config", "validate", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_schema_is_json_and_covers_accounts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == json.loads(json.dumps(json_schema()))
    assert "accounts" in schema["properties"] and "user" in schema["required"]


def test_default_config_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "salvage.yaml"
    path.write_text(MINIMAL)
    monkeypatch.setenv("SALVAGE_CONFIG", os.fspath(path))
    assert load_config().user.name == "Alex"


# ---- provider sections come from the providers: validate checks what run would -------------------


def _account(section: str) -> str:
    return MINIMAL.replace("    drafts: {type: folder, path: out}\n", "    drafts: {type: folder, path: out}\n" + section)


def test_an_empty_microsoft_section_fails_validate_not_the_run(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    text = MINIMAL.replace("{type: ics, path: cal.ics}", "{type: microsoft}") + "    microsoft: {}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "c.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("accounts[0].microsoft (") and "client_id is not set" in problem
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["config", "validate", "--config", str(path)]) == 2
    assert "client_id is not set" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["proxy.example:8080/", "ftp://proxy.example/", "https://"])
def test_a_malformed_google_endpoint_fails_validate(value: str) -> None:
    text = MINIMAL.replace("{type: ics, path: cal.ics}", "{type: google}") + f"    google: {{api_endpoint: '{value}'}}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    (problem,) = info.value.problems
    assert problem.startswith("accounts[0].google.api_endpoint (") and "http(s) URL" in problem


def test_provider_sections_are_checked_by_the_providers_models() -> None:
    config = parse_config(MINIMAL.replace("{type: ics, path: cal.ics}", "{type: google, calendars: all}")
                          + "    google: {read_mail: false, timeout_seconds: 5}\n")
    account = config.accounts[0]
    from providers.google.settings import GoogleCalendarSettings, GoogleSettings

    assert isinstance(account.calendar, GoogleCalendarSettings) and account.calendar.calendars == "all"
    google = account.connection("google")
    assert isinstance(google, GoogleSettings) and google.read_mail is False and google.timeout_seconds == 5
    with pytest.raises(ConfigError) as info:
        parse_config(_account("    google: {read_mail: sometimes, colour: red}\n"))
    joined = "\n".join(info.value.problems)
    assert "accounts[0].google.read_mail" in joined and "accounts[0].google.colour" in joined


def test_an_unknown_type_is_one_line_naming_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL.replace("{type: folder, path: out}", "{type: pigeon}"))
    (problem,) = info.value.problems
    assert "unknown drafts type 'pigeon'; the drafts types are folder, google, " in problem and "\n" not in problem


def test_a_key_named_connections_is_unknown() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_account("    connections: {google: {}}\n"))
    assert "accounts[0].connections" in info.value.problems[0] and "unknown key" in info.value.problems[0]


def test_the_schema_holds_each_providers_own_sections() -> None:
    schema = json_schema()
    defs = schema["$defs"]
    account = defs["AccountConfig"]["properties"]
    assert {"google", "microsoft"} <= set(account) and "connections" not in account
    assert "client_id" in defs["MicrosoftSettings"]["required"]
    calendar = json.dumps(account["calendar"])
    assert all(f"#/$defs/{name}" in calendar for name in ("IcsSettings", "GoogleCalendarSettings",
                                                          "MicrosoftCalendarSettings"))
    assert "FolderSettings" in json.dumps(account["drafts"])
