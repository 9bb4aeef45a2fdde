"""Scenario: the whole experiment as data (filled in by the core issue)."""
