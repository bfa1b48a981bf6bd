"""Google: Calendar API v3 for the calendar, Gmail drafts for the mail, one OAuth connection."""
