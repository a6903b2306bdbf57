"""overlord package."""
