"""Consumers that turn a source's queued events into index changes or sync jobs."""
