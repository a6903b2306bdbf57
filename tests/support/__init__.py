"""Shared test helpers (fixtures and utilities reused across test tiers)."""
