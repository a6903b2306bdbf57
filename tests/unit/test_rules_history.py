"""Which rule-change audit entries a history request answers (Druid's ``fetchAuditHistory``)."""

from __future__ import annotations

from typing import Any

from common.segments.isotime import parse_iso
from services.coordinator.routes.rules import filter_history

NOW = parse_iso("2026-01-10T00:00:00.000Z")


def entry(when: str) -> dict[str, Any]:
    return {"key": "wiki", "auditTime": when}


ENTRIES = [entry("2026-01-09T00:00:00.000Z"), entry("2025-12-01T00:00:00.000Z")]


def test_default_is_the_last_week() -> None:
    assert filter_history(ENTRIES, None, None, NOW) == ENTRIES[:1]


def test_count_alone_is_not_limited_to_a_week() -> None:
    assert filter_history(ENTRIES, None, 2, NOW) == ENTRIES


def test_interval_selects_changes_made_within_it() -> None:
    assert filter_history(ENTRIES, "2025-11-01/2025-12-31", None, NOW) == ENTRIES[1:]
    assert filter_history(ENTRIES, "2025-11-01_2026-02-01", 1, NOW) == ENTRIES
