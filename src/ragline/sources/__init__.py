"""Configured sources: connectors stored as data, with schedules, saved positions and
run reports."""
