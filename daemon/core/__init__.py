"""The pure core: events, config and "now" in, decisions out. No I/O, no clock, no providers."""
