"""Microsoft: Graph calendarView delta for the calendar, Outlook drafts, one MSAL token cache."""
