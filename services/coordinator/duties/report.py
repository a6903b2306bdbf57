"""What a duty cycle tells the operator: once per change of state, not once per cycle.

A cycle that cannot place replicas (no historical of the tier has room, or the tier has fewer
historicals than the rule asks for) or finds segments no rule applies to would otherwise log the
same warning every ``druid.coordinator.period`` for as long as the cluster stays that way. The
state reported is *which* (datasource, tier) pairs lack replicas and *which* datasources have
segments without a rule; the counts are in the message but a count alone changing (one more
segment of an already under-replicated datasource) is not a new state. When a state clears, one
line says so. ``GET /druid/coordinator/v1/loadstatus?full`` always has the current figures.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from services.coordinator.duties.model import CyclePlan


@dataclass(frozen=True)
class Line:
    level: int
    text: str


@dataclass
class CycleReporter:
    """Remembers the last reported state; ``lines(plan)`` is what to log after a cycle."""

    unplaced: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    no_rule: frozenset[str] = field(default_factory=frozenset)

    def lines(self, plan: CyclePlan) -> list[Line]:
        out: list[Line] = []
        counts = Counter((sid.data_source, tier) for sid, tier in plan.unassigned)
        unplaced = frozenset(counts)
        if unplaced != self.unplaced:
            if unplaced:
                detail = ", ".join(
                    f"{ds} in tier {tier}: {counts[ds, tier]}" for ds, tier in sorted(unplaced)
                )
                out.append(
                    Line(
                        logging.WARNING,
                        f"replicas not placed (no synced historical of the tier has room or "
                        f"the tier has fewer historicals than the rule asks for): {detail}; "
                        f"said again only when this changes, see loadstatus?full",
                    )
                )
            else:
                out.append(Line(logging.INFO, "every replica the rules ask for is placed now"))
            self.unplaced = unplaced
        missing = Counter(sid.data_source for sid in plan.no_rule)
        no_rule = frozenset(missing)
        if no_rule != self.no_rule:
            if no_rule:
                detail = ", ".join(f"{ds}: {missing[ds]}" for ds in sorted(no_rule))
                out.append(
                    Line(
                        logging.WARNING,
                        f"no rule applies to used segments of {detail} (left as they are); "
                        f"said again only when this changes",
                    )
                )
            else:
                out.append(Line(logging.INFO, "a rule applies to every used segment now"))
            self.no_rule = no_rule
        return out
