"""Druid's lookups: the coordinator's config (tiers of ``LookupExtractorFactoryContainer``)."""
