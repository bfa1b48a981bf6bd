"""Salvage: drafts the right email when a job interview is about to slip, or just did."""

__version__ = "0.1.0"
