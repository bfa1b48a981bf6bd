"""Microsoft Graph: Outlook calendars in, Outlook drafts out (never sent). Registered as ``microsoft``."""

from __future__ import annotations

from providers.base import Provider, Role
from providers.microsoft.settings import MicrosoftCalendarSettings, MicrosoftDraftsSettings, MicrosoftSettings

PROVIDER = Provider(
    name="microsoft",
    calendar=Role(MicrosoftCalendarSettings, "providers.microsoft.calendar:open_calendar"),
    drafts=Role(MicrosoftDraftsSettings, "providers.microsoft.mail:open_drafts"),
    connection=MicrosoftSettings,
    authenticate="providers.microsoft.auth:authenticate",
)
