"""Row ingestion meters and parse-exception accounting (Druid's ``RowIngestionMeters`` and
``ParseExceptionHandler``).

Counters: ``processed`` (rows added to the index), ``processedBytes`` (bytes of every record
read), ``processedWithError`` (added, but some field could not be converted),
``unparseable`` (the record or its timestamp could not be parsed; skipped) and ``thrownAway``
(filtered out, or outside the allowed intervals / message-rejection windows).

Moving averages are Dropwizard's exponentially weighted one/five/fifteen-minute rates (events per
second, ticked every 5 s), as Druid's ``DropwizardRowIngestionMeters`` reports them. Nothing here
reads a clock: callers pass ``now`` (seconds, any monotonic origin).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from common.errors import KdruidError

log = logging.getLogger(__name__)

BUILD_SEGMENTS = "buildSegments"
METER_NAMES = ("processed", "processedBytes", "processedWithError", "thrownAway", "unparseable")
TICK_SECONDS = 5.0
_WINDOWS = {"1m": 1.0, "5m": 5.0, "15m": 15.0}


class MaxParseExceptionsExceeded(KdruidError):
    """More rows failed to parse than ``tuningConfig.maxParseExceptions`` allows; the task fails."""

    error_code = "Max parse exceptions exceeded"


@dataclass(slots=True)
class _Ewma:
    alpha: float
    rate: float = 0.0
    initialized: bool = False

    def tick(self, count: float) -> None:
        instant = count / TICK_SECONDS
        if self.initialized:
            self.rate += self.alpha * (instant - self.rate)
        else:
            self.rate = instant
            self.initialized = True


def _alpha(minutes: float) -> float:
    return 1.0 - math.exp(-TICK_SECONDS / 60.0 / minutes)


@dataclass(slots=True)
class _Meter:
    count: int = 0
    uncounted: int = 0
    ewmas: dict[str, _Ewma] = field(
        default_factory=lambda: {k: _Ewma(_alpha(m)) for k, m in _WINDOWS.items()}
    )

    def mark(self, n: int) -> None:
        self.count += n
        self.uncounted += n

    def tick(self) -> None:
        n, self.uncounted = self.uncounted, 0
        for e in self.ewmas.values():
            e.tick(n)


class RowIngestionMeters:
    """The five row counters of one task, with their moving averages."""

    def __init__(self, now: float = 0.0) -> None:
        self._meters = {name: _Meter() for name in METER_NAMES}
        self._last_tick = now

    def increment(self, name: str, n: int = 1) -> None:
        self._meters[name].mark(n)

    def add_processed(self, rows: int, nbytes: int = 0) -> None:
        self._meters["processed"].mark(rows)
        self._meters["processedBytes"].mark(nbytes)

    def add_processed_bytes(self, nbytes: int) -> None:
        self._meters["processedBytes"].mark(nbytes)

    def add_thrown_away(self, n: int = 1) -> None:
        self._meters["thrownAway"].mark(n)

    def add_unparseable(self, n: int = 1) -> None:
        self._meters["unparseable"].mark(n)

    def add_processed_with_error(self, n: int = 1) -> None:
        self._meters["processedWithError"].mark(n)

    def get(self, name: str) -> int:
        return self._meters[name].count

    @property
    def processed(self) -> int:
        return self._meters["processed"].count

    @property
    def unparseable(self) -> int:
        return self._meters["unparseable"].count

    @property
    def processed_with_error(self) -> int:
        return self._meters["processedWithError"].count

    @property
    def thrown_away(self) -> int:
        return self._meters["thrownAway"].count

    def tick(self, now: float) -> None:
        """Catch the moving averages up to ``now`` (one EWMA step per elapsed 5 s)."""
        steps = int((now - self._last_tick) // TICK_SECONDS)
        if steps <= 0:
            return
        # Beyond a few hours of silence every average has decayed to zero anyway.
        for _ in range(min(steps, 4000)):
            for m in self._meters.values():
                m.tick()
        self._last_tick += steps * TICK_SECONDS

    def totals(self) -> dict[str, int]:
        return {name: m.count for name, m in self._meters.items()}

    def moving_averages(self, now: float) -> dict[str, dict[str, float]]:
        self.tick(now)
        return {
            window: {name: m.ewmas[window].rate for name, m in self._meters.items()}
            for window in _WINDOWS
        }

    def row_stats(self, now: float) -> dict[str, Any]:
        """Druid's ``rowStats`` chat-endpoint body."""
        return {
            "movingAverages": {BUILD_SEGMENTS: self.moving_averages(now)},
            "totals": {BUILD_SEGMENTS: self.totals()},
        }


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """One row or record that failed; ``fatal`` means unparseable (the row was skipped)."""

    input: str
    details: tuple[str, ...]
    fatal: bool = True


class ParseExceptionHandler:
    """Counts failures on the meters, keeps the newest ``maxSavedParseExceptions`` reports and
    raises ``MaxParseExceptionsExceeded`` once ``unparseable + processedWithError`` exceeds
    ``maxParseExceptions`` (Druid's check, evaluated after each failure)."""

    def __init__(
        self,
        meters: RowIngestionMeters,
        max_parse_exceptions: int = 2**31 - 1,
        max_saved_parse_exceptions: int = 0,
        log_parse_exceptions: bool = False,
    ) -> None:
        self.meters = meters
        self.max_parse_exceptions = max_parse_exceptions
        self.log_parse_exceptions = log_parse_exceptions
        self._saved: deque[dict[str, Any]] = deque(maxlen=max(0, max_saved_parse_exceptions))

    def handle(self, failure: ParseFailure, now_ms: int) -> None:
        if failure.fatal:
            self.meters.add_unparseable()
        else:
            self.meters.add_processed_with_error()
        if self.log_parse_exceptions:
            log.warning(
                "parse exception: %s (input: %.200s)", "; ".join(failure.details), failure.input
            )
        if self._saved.maxlen:
            self._saved.append(
                {
                    "timeOfExceptionMillis": now_ms,
                    "input": failure.input,
                    "errorType": "unparseable" if failure.fatal else "processedWithError",
                    "details": list(failure.details),
                }
            )
        failed = self.meters.unparseable + self.meters.processed_with_error
        if failed > self.max_parse_exceptions:
            raise MaxParseExceptionsExceeded(
                f"Max parse exceptions[{self.max_parse_exceptions}] exceeded",
                unparseable=self.meters.unparseable,
                processedWithError=self.meters.processed_with_error,
            )

    def keep(self, report: dict[str, Any]) -> None:
        """Keep a report another task saved (a parallel supervisor gathers its sub-tasks')."""
        if self._saved.maxlen:
            self._saved.append(report)

    def saved(self) -> list[dict[str, Any]]:
        """Saved reports, oldest first."""
        return list(self._saved)

    def unparseable_events(self) -> dict[str, list[dict[str, Any]]]:
        """Druid's ``unparseableEvents`` chat-endpoint body."""
        return {BUILD_SEGMENTS: self.saved()}
