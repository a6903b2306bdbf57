"""historical package."""
