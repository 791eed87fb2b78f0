"""Hostile servers and specs against the real plugin, in a subprocess."""
