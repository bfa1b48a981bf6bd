"""The Microsoft provider's config sections: ``calendar``/``drafts`` ``type: microsoft`` and the account's ``microsoft:``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from daemon.config import ProviderSection

REGISTER_HINT = (
    "Salvage has no shared Microsoft app id: register your own app in the Microsoft Entra admin "
    "center (platform 'Mobile and desktop applications', redirect URI http://localhost, "
    "'Allow public client flows' = Yes, delegated permissions Calendars.Read, Mail.ReadWrite, "
    "User.Read) and put its Application (client) ID under microsoft.client_id. See docs/microsoft.md."
)


class MicrosoftSettings(ProviderSection):
    """The account-level ``microsoft:`` section, shared by the Outlook calendar and drafts."""

    client_id: str = Field(description="Your app registration's client id (see docs/microsoft.md).")
    tenant: str = Field("common", description="common, organizations, consumers or a tenant id.")
    authority: str | None = Field(
        None, description="Full authority URL (national clouds), overrides tenant."
    )
    graph_url: str = Field("https://graph.microsoft.com", description="Graph root (national clouds).")
    auth_flow: Literal["device_code", "interactive"] = Field("device_code")
    token_cache: Path | None = Field(None, description="Token cache file; default in state dir.")
    ca_bundle: Path | None = Field(None, description="CA bundle for TLS-intercepting networks.")
    timeout_seconds: float = Field(30.0, gt=0, le=300)

    @model_validator(mode="before")
    @classmethod
    def _has_client_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("client_id"):
            raise ValueError(f"client_id is not set. {REGISTER_HINT}")
        return data

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"is empty. {REGISTER_HINT}")
        return value.strip()

    @field_validator("graph_url", "authority")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parsed = urlparse(value)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value


class MicrosoftCalendarSettings(ProviderSection):
    """``calendar: {type: microsoft}``."""

    needs = "microsoft"
    type: Literal["microsoft"]
    calendars: list[str] | Literal["all"] = Field(
        default_factory=lambda: ["default"],
        description="Calendar ids to read ('default' is your main calendar), or 'all'.",
    )


class MicrosoftDraftsSettings(ProviderSection):
    """``drafts: {type: microsoft}``: Outlook drafts."""

    needs = "microsoft"
    type: Literal["microsoft"]
