"""The provider registry: its static list of sections is the providers' own, and a config imports only
the providers it names (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from providers import registry

ROOT = Path(__file__).resolve().parents[1]


def test_the_declared_sections_are_each_providers_own() -> None:
    assert set(registry.SECTIONS) == set(registry.PROVIDERS)
    for name, declared in registry.SECTIONS.items():
        spec = registry.provider(name)
        assert spec is not None
        has = {role for role in ("calendar", "drafts") if spec.role(role) is not None}
        if spec.connection is not None:
            has.add("connection")
        assert declared == has, name


def test_lookups_agree_with_the_providers_and_are_kept() -> None:
    sections = registry._SECTIONS
    for role in ("calendar", "drafts", "connection"):
        for name in sections.kinds(role):
            model = sections.section_model(role, name)
            assert model is not None and sections.section_model(role, name) is model
    assert sections.section_model("calendar", "folder") is None and sections.section_model("connection", "ics") is None
    assert sections.section_model("calendar", "nope") is None and sections.section_model("connection", "name") is None


PROBE = """
import json, sys
from daemon.config import parse_config
import providers.registry
text = open(sys.argv[1]).read()
try:
    parse_config(text)
    outcome = "ok"
except Exception as exc:
    outcome = str(exc)
print(json.dumps([outcome, sorted(m for m in sys.modules if m.startswith("providers."))]))
"""


def _validate_in_a_fresh_process(tmp_path: Path, accounts: str) -> tuple[str, list[str]]:
    config = tmp_path / "c.yaml"
    config.write_text("user: {name: A, email: a@b.example, timezone: UTC}\naccounts:\n" + accounts)
    out = subprocess.run([sys.executable, "-c", PROBE, str(config)], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    outcome, modules = json.loads(out)
    return outcome, modules


def test_a_config_imports_only_the_providers_it_names(tmp_path: Path) -> None:
    outcome, modules = _validate_in_a_fresh_process(tmp_path, "".join(
        f"  - {{name: a{i}, calendar: {{type: ics, url: 'https://x.example/{i}.ics'}},"
        f" drafts: {{type: folder, path: d{i}}}}}\n" for i in range(3)))
    assert outcome == "ok"
    assert {"providers.ics", "providers.folder"} <= set(modules)
    assert not [m for m in modules if m.split(".")[1] in ("google", "microsoft", "imap", "caldav")], modules


def test_an_unknown_type_still_lists_every_kind_without_importing_them(tmp_path: Path) -> None:
    outcome, modules = _validate_in_a_fresh_process(
        tmp_path, "  - {name: a, calendar: {type: outlook}, drafts: {type: folder, path: d}}\n")
    assert "unknown calendar type 'outlook'; the calendar types are caldav, google, ics or microsoft" in outcome
    assert not [m for m in modules if m.split(".")[1] in ("google", "microsoft", "imap", "caldav", "ics")], modules
