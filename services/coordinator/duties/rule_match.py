"""Which rule applies to a segment interval at ``now``: Druid's ``Rule.appliesTo`` per rule type.

Rules are evaluated in order, the datasource's first, then ``_default``; the first that applies
wins. Times are epoch milliseconds (UTC); periods are subtracted with Joda's ISO arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.segments.intervals import Interval
from common.segments.period import UTC_ZONE, Period, add_period
from services.coordinator.rules import (
    BroadcastByInterval,
    BroadcastByPeriod,
    BroadcastForever,
    DropBeforeByPeriod,
    DropByInterval,
    DropByPeriod,
    DropForever,
    LoadByInterval,
    LoadByPeriod,
    LoadForever,
    Rule,
)

DEFAULT_RULES_KEY = "_default"

LoadRule = LoadForever | LoadByInterval | LoadByPeriod
DropRule = DropForever | DropByInterval | DropByPeriod | DropBeforeByPeriod
BroadcastRule = BroadcastForever | BroadcastByInterval | BroadcastByPeriod


def _period_ago(period: str, now: int) -> int:
    return add_period(UTC_ZONE, now, Period.parse(period), -1)


def _eligible_by_period(period: str, include_future: bool, segment: Interval, now: int) -> bool:
    """Druid's ``Rules.eligibleForLoad(period, interval, now, includeFuture)``."""
    window = Interval(_period_ago(period, now), now)
    if include_future:
        return window.start < segment.end
    return window.overlaps(segment)


def applies_to(rule: Rule, segment: Interval, now: int) -> bool:
    """True when ``rule`` applies to a segment with interval ``segment`` at ``now`` (millis)."""
    match rule:
        case LoadForever() | DropForever() | BroadcastForever():
            return True
        case LoadByInterval() | BroadcastByInterval():
            return rule.interval.overlaps(segment)
        case LoadByPeriod() | BroadcastByPeriod():
            return _eligible_by_period(rule.period, rule.include_future, segment, now)
        case DropByInterval():
            # Druid's IntervalDropRule: the rule interval must *contain* the segment.
            return rule.interval.contains(segment)
        case DropByPeriod():
            ago = _period_ago(rule.period, now)
            if rule.include_future:
                return ago <= segment.start
            return Interval(ago, now).contains(segment)
        case DropBeforeByPeriod():
            return segment.end <= _period_ago(rule.period, now)
    raise TypeError(f"unknown rule {rule!r}")


def rules_with_default(rules: Mapping[str, Sequence[Rule]], data_source: str) -> list[Rule]:
    """The datasource's rules followed by the ``_default`` ones (``getRulesWithDefault``)."""
    own = list(rules.get(data_source, ())) if data_source != DEFAULT_RULES_KEY else []
    return own + list(rules.get(DEFAULT_RULES_KEY, ()))


def find_rule(
    rules: Mapping[str, Sequence[Rule]], data_source: str, segment: Interval, now: int
) -> Rule | None:
    """The first rule that applies, or None (Druid alerts: the segment is left alone)."""
    for rule in rules_with_default(rules, data_source):
        if applies_to(rule, segment, now):
            return rule
    return None


def required_replicas(rule: Rule | None) -> dict[str, int] | None:
    """Replicas per tier a load rule asks for; None for broadcast, drop or no rule."""
    if isinstance(rule, LoadForever | LoadByInterval | LoadByPeriod):
        return rule.replicants()
    return None


def is_load(rule: Rule | None) -> bool:
    return isinstance(rule, LoadForever | LoadByInterval | LoadByPeriod)


def is_drop(rule: Rule | None) -> bool:
    return isinstance(rule, DropForever | DropByInterval | DropByPeriod | DropBeforeByPeriod)


def is_broadcast(rule: Rule | None) -> bool:
    return isinstance(rule, BroadcastForever | BroadcastByInterval | BroadcastByPeriod)
