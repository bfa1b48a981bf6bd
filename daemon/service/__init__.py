"""The long-running service: scheduler, instance lock, notifications and the health file."""
