"""Google: Calendar API v3 in, Gmail drafts out (never sent). Registered as ``google``."""

from __future__ import annotations

from providers.base import Provider, Role
from providers.google.settings import GoogleCalendarSettings, GoogleDraftsSettings, GoogleSettings

PROVIDER = Provider(
    name="google",
    calendar=Role(GoogleCalendarSettings, "providers.google.calendar:open_calendar"),
    drafts=Role(GoogleDraftsSettings, "providers.google.gmail:open_drafts"),
    connection=GoogleSettings,
    authenticate="providers.google.auth:authenticate",
)
