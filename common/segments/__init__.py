"""segments package."""
