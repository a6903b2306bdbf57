"""HTTP routes of the overlord."""
