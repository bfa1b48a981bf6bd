"""The Google provider's config sections: ``calendar``/``drafts`` ``type: google`` and the account's ``google:``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from daemon.config import ProviderSection


def _http_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"(?i)^https?://[^/\s]+", value):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


class GoogleSettings(ProviderSection):
    """The account-level ``google:`` section, shared by the Google calendar and Gmail drafts."""

    client_secrets: Path | None = Field(
        None, description="OAuth client JSON downloaded from Google Cloud (Desktop app)."
    )
    token_file: Path | None = Field(None, description="Where the token is kept; default in state dir.")
    read_mail: bool = Field(
        True,
        description="Ask for gmail.readonly to thread drafts under the invitation and tell "
        "sent from deleted drafts. false: unthreaded drafts, compose scope only.",
    )
    imap_access: bool = Field(
        False,
        description="Also ask for https://mail.google.com/ so that imap drafts with auth: xoauth2 can "
        "sign in to Gmail's IMAP. That scope is full mail access (it can send); prefer drafts: "
        "{type: google}, which needs none of it.",
    )
    api_endpoint: str | None = Field(None, description="Base URL override (proxies, testing).")
    token_uri: str | None = Field(None, description="OAuth token endpoint override.")
    auth_uri: str | None = Field(None, description="OAuth authorization endpoint override.")
    ca_bundle: Path | None = Field(None, description="CA bundle for TLS-intercepting networks.")
    timeout_seconds: float = Field(30.0, gt=0, le=300)
    auth_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Local port for the sign-in redirect of `salvage auth`; 0 picks a free one. "
        "Fix it (e.g. 8085) to forward it over SSH with --no-browser.",
    )

    _urls = field_validator("api_endpoint", "token_uri", "auth_uri")(_http_url)


class GoogleCalendarSettings(ProviderSection):
    """``calendar: {type: google}``."""

    needs = "google"
    type: Literal["google"]
    calendars: list[str] | Literal["all"] = Field(
        default_factory=lambda: ["primary"],
        description="Calendar ids to read, or 'all' for every calendar you can see.",
    )


class GoogleDraftsSettings(ProviderSection):
    """``drafts: {type: google}``: Gmail drafts."""

    needs = "google"
    type: Literal["google"]
