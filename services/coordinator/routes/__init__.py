"""HTTP routes of the coordinator."""
