"""Kafka supervisors on the overlord leader: spec, run loop, chat client, manager and API."""
