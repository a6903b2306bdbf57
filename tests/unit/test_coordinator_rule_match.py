"""Druid's Rule.appliesTo per rule type, and first-match-wins with the _default fallback."""

from __future__ import annotations

import pytest

from common.segments.intervals import Interval
from common.segments.isotime import parse_iso
from services.coordinator.duties.rule_match import applies_to, find_rule, rules_with_default
from services.coordinator.rules import parse_rules

JAN = "2024-01-01/2024-02-01"
NO = False
NOW = parse_iso("2024-06-15T00:00:00Z")


def rule(raw: dict) -> object:
    return parse_rules([raw])[0]


def iv(text: str) -> Interval:
    return Interval.parse(text)


@pytest.mark.parametrize(
    ("raw", "segment", "expected"),
    [
        ({"type": "loadForever"}, "2000-01-01/2000-01-02", True),
        ({"type": "dropForever"}, "2000-01-01/2000-01-02", True),
        (
            {"type": "loadByInterval", "interval": JAN},
            "2024-01-31/2024-02-02",
            True,
        ),
        (
            {"type": "loadByInterval", "interval": JAN},
            "2024-02-01/2024-02-02",
            False,
        ),
        # dropByInterval needs containment, not overlap
        (
            {"type": "dropByInterval", "interval": JAN},
            "2024-01-31/2024-02-02",
            False,
        ),
        (
            {"type": "dropByInterval", "interval": JAN},
            "2024-01-31/2024-02-01",
            True,
        ),
        # loadByPeriod P1M at 2024-06-15: window [2024-05-15, 2024-06-15)
        ({"type": "loadByPeriod", "period": "P1M"}, "2024-05-14/2024-05-15", False),
        ({"type": "loadByPeriod", "period": "P1M"}, "2024-05-14/2024-05-16", True),
        ({"type": "loadByPeriod", "period": "P1M"}, "2025-01-01/2025-01-02", True),
        (
            {"type": "loadByPeriod", "period": "P1M", "includeFuture": NO},
            "2025-01-01/2025-01-02",
            False,
        ),
        (
            {"type": "loadByPeriod", "period": "P1M", "includeFuture": NO},
            "2024-06-14/2024-06-16",
            True,
        ),
        # dropByPeriod: includeFuture -> window start <= segment start
        ({"type": "dropByPeriod", "period": "P1M"}, "2024-05-15/2024-05-16", True),
        ({"type": "dropByPeriod", "period": "P1M"}, "2024-05-14/2024-05-16", False),
        ({"type": "dropByPeriod", "period": "P1M"}, "2030-01-01/2030-01-02", True),
        (
            {"type": "dropByPeriod", "period": "P1M", "includeFuture": NO},
            "2030-01-01/2030-01-02",
            False,
        ),
        (
            {"type": "dropByPeriod", "period": "P1M", "includeFuture": NO},
            "2024-06-01/2024-06-15",
            True,
        ),
        # dropBeforeByPeriod: segment end <= now - period
        ({"type": "dropBeforeByPeriod", "period": "P1M"}, "2024-05-14/2024-05-15", True),
        ({"type": "dropBeforeByPeriod", "period": "P1M"}, "2024-05-14/2024-05-16", False),
        (
            {"type": "broadcastByInterval", "interval": JAN},
            "2024-01-05/2024-01-06",
            True,
        ),
    ],
)
def test_applies_to(raw: dict, segment: str, expected: bool) -> None:
    assert applies_to(rule(raw), iv(segment), NOW) is expected  # type: ignore[arg-type]


def test_first_match_wins_then_default() -> None:
    rules = {
        "wiki": parse_rules(
            [
                {
                    "type": "loadByInterval",
                    "interval": JAN,
                    "tieredReplicants": {"hot": 1},
                },
                {"type": "dropByInterval", "interval": "2023-01-01/2024-06-01"},
            ]
        ),
        "_default": parse_rules([{"type": "loadForever"}]),
    }
    got = find_rule(rules, "wiki", iv("2024-01-10/2024-01-11"), NOW)
    assert got is not None and got.type == "loadByInterval"
    got = find_rule(rules, "wiki", iv("2023-03-01/2023-03-02"), NOW)
    assert got is not None and got.type == "dropByInterval"
    got = find_rule(rules, "wiki", iv("2025-03-01/2025-03-02"), NOW)
    assert got is not None and got.type == "loadForever"
    assert find_rule(rules, "other", iv("2025-03-01/2025-03-02"), NOW).type == "loadForever"  # type: ignore[union-attr]
    assert find_rule({"wiki": rules["wiki"]}, "wiki", iv("2025-03-01/2025-03-02"), NOW) is None
    assert len(rules_with_default(rules, "_default")) == 1
