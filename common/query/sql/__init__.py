"""Druid SQL on the native engine: parse (sqlglot), plan onto native queries, post-process the
native results, and write Druid's SQL result formats. See docs/sql.md."""
