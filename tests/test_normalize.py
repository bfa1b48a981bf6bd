from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from daemon.core.normalize import find_join_urls, find_phones, html_to_text, parse_instant, zone, zone_name


@pytest.mark.parametrize(
    ("name", "iana"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("GMT Standard Time", "Europe/London"),
        ("India Standard Time", "Asia/Calcutta"),
        ("UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
        ("tzone://Microsoft/Custom", None),
        ("Customized Time Zone", None),
        ("Europe/Paris", "Europe/Paris"),
        ("/mozilla.org/20050126_1/America/New_York", "America/New_York"),
        ("Not A Zone", None),
        ("", None),
    ],
)
def test_zone_names(name: str, iana: str | None) -> None:
    assert zone_name(name) == iana
    if iana and iana != "UTC":
        assert isinstance(zone(name), ZoneInfo)


def test_parse_instant_graph_precision_and_default_zone() -> None:
    assert parse_instant("2016-12-09T20:30:00.0000000") == datetime(2016, 12, 9, 20, 30, tzinfo=timezone.utc)
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_instant("2026-03-29T02:30:00", berlin).tzinfo is berlin
    assert parse_instant("2026-03-29T02:30:00Z").utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_join_urls_only_meeting_services() -> None:
    text = "Agenda: https://example.com/agenda. Join: https://us02web.zoom.us/j/81234567890?pwd=abc."
    assert find_join_urls(text, "https://meet.google.com/abc-defg-hij") == (
        "https://us02web.zoom.us/j/81234567890?pwd=abc",
        "https://meet.google.com/abc-defg-hij",
    )
    assert find_join_urls("https://evil.example/zoom.us/j/1") == ()


def test_phones_are_found_conservatively() -> None:
    assert find_phones("If disconnected call me on +44 20 7946 0321.") == ("+44 20 7946 0321",)
    assert find_phones("Phone: (415) 555-0134 ext 22") == ("(415) 555-0134",)
    for text in ("Meeting ID 812 3456 7890", "2026-11-24 10:30", "https://zoom.us/j/81234567890", "Room 12"):
        assert find_phones(text) == (), text


def test_html_to_text() -> None:
    assert html_to_text("<p>Hello&nbsp;<b>Alex</b></p><script>x()</script><a href='https://zoom.us/j/1'>Join</a>") == (
        "Hello Alex\nJoin (https://zoom.us/j/1)"
    )
    # Outlook's plain-text bodies put links in angle brackets; they are not tags.
    teams = "Click here to join the meeting<https://teams.microsoft.com/l/meetup-join/19%3am@thread.v2/0>"
    assert html_to_text(teams + "<br>Mail <mailto:a@b.example>") == teams + "\nMail <mailto:a@b.example>"


def test_meeting_pins_and_conference_ids_are_not_phone_numbers() -> None:
    google = "Join by phone\n+1 650-555-0199,,218443902# US\nPIN: 218 443 902#"
    teams = "Call in: +44 20 3855 8903,,123456789#  Phone conference ID: 987 654 321#"
    assert find_phones(google) == ("+1 650-555-0199",)
    assert find_phones(teams) == ("+44 20 3855 8903",)
