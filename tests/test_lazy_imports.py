"""What a command imports: only what it uses (issue 14, item 6). A pass where every calendar answered
304 parses nothing, so it loads no iCalendar parser; a local file loads no HTTP client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("icalendar", "recurring_ical_events", "httpx", "pydantic", "jinja2", "rich", "yaml")


def _modules_after(code: str, *args: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_help_imports_none_of_the_heavy_libraries() -> None:
    loaded = _modules_after("import contextlib, io\nfrom daemon.cli import main\n"
                            "with contextlib.redirect_stdout(io.StringIO()):\n"
                            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


def test_the_ics_provider_loads_its_parser_and_http_client_only_when_used(tmp_path: Path) -> None:
    loaded = _modules_after("import providers.ics")
    assert not {m for m in loaded if m.split(".")[0] in ("icalendar", "recurring_ical_events", "httpx")}
    ics = tmp_path / "c.ics"
    ics.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:a\r\n"
                   "DTSTAMP:20261101T000000Z\r\nDTSTART:20261124T090000Z\r\nDTEND:20261124T100000Z\r\n"
                   "RRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    loaded = _modules_after(
        "import sys\nfrom datetime import datetime, timezone\nfrom pathlib import Path\n"
        "from daemon.core.model import utc_now\nfrom providers.base import ProviderContext, Window\n"
        "from providers.ics import IcsSettings, IcsSource\n"
        "ctx = ProviderContext('a', user_name='A', email='a@b.example', addresses=frozenset({'a@b.example'}),"
        " zone=timezone.utc, state_dir=Path(sys.argv[1]), connections={}, clock=utc_now, sleep=lambda s: None)\n"
        "source = IcsSource(IcsSettings(type='ics', path=Path(sys.argv[2])), ctx)\n"
        "now = datetime(2026, 11, 24, tzinfo=timezone.utc)\n"
        "result = source.fetch(Window(now, datetime(2026, 12, 24, tzinfo=timezone.utc)), None)\n"
        "assert len(result.events) == 3, result\n", str(tmp_path), str(ics))
    assert {"icalendar", "recurring_ical_events"} <= loaded and "httpx" not in loaded
