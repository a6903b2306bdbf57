"""peon package."""
