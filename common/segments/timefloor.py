"""Flooring instants to period buckets, one at a time and vectorised over numpy int64 arrays.

This is Druid's ``PeriodGranularity.truncate`` (Joda semantics), compiled once per granularity
into a ``FloorPlan`` that both the scalar and the vectorised path follow:

- ``arith``: buckets of a fixed length from a fixed origin (UTC or fixed-offset zones, any
  time-only period, multi-hour periods): ``t - (t - origin) mod length``.
- ``local_unit``: one hour/minute/second/milli floored in the zone's wall-clock time (Joda's
  ``hourOfDay().roundFloor``), keeping the instant's own offset (right inside a repeated hour).
- ``local_step``: days or weeks counted in wall-clock time from a local origin, converted back
  to UTC (so a day in Los Angeles starts at local midnight across DST changes).
- ``months``: months or years counted from a local origin, with Joda's day-of-month clamping.
- ``compound``: periods mixing calendar fields in a DST zone (``P1M1D``): boundaries are stepped
  one period at a time from the origin, as Druid's ``truncateCompoundPeriod``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from common.errors import ResourceLimitExceeded
from common.segments.isotime import MILLIS_PER_DAY, civil_from_days
from common.segments.period import Period, Zone, add_months_local, add_period

I64 = npt.NDArray[np.int64]

# Offsets are looked up inside datetime's range only; only ETERNITY-like instants fall outside.
_CLIP_LO = -62135596800000
_CLIP_HI = 253402300799999
MAX_COMPOUND_BUCKETS = 5_000_000

Kind = Literal["arith", "local_unit", "local_step", "months", "compound"]


@dataclass(frozen=True)
class FloorPlan:
    kind: Kind
    zone: Zone
    period: Period
    origin: int  # UTC millis (arith, compound)
    origin_local: int  # wall-clock millis of the origin (local_step, months)
    step: int  # millis (arith, local_unit, local_step) or months (months)


def make_plan(period: Period, zone: Zone, origin: int | None) -> FloorPlan:
    """Decide how ``period`` in ``zone`` floors, following PeriodGranularity's branches."""
    has_origin = origin is not None
    if origin is None:
        # Druid: the default origin is 1970-01-01T00:00 in the granularity's own zone.
        origin = zone.local_to_utc(0)
    origin_local = origin + zone.offset(origin)
    nonzero = [v for v in period.fields() if v]
    compound = len(nonzero) > 1

    def plan(kind: Kind, step: int, o_local: int = origin_local) -> FloorPlan:
        return FloorPlan(kind, zone, period, origin, o_local, step)

    if compound or period.is_time_only:
        if period.is_time_only and (compound or has_origin or nonzero[0] > 1 or zone.is_fixed):
            return plan("arith", period.standard_millis())
        if compound and not period.has_calendar_months and zone.is_fixed:
            return plan("arith", period.standard_millis())
        if compound:
            return plan("compound", 0)
        return plan("local_unit", period.standard_millis())
    if period.years or period.months:
        months = period.years * 12 + period.months
        if not has_origin and nonzero[0] == 1:
            return plan("months", months, 0)  # roundFloor: Jan 1 / the 1st of the month
        return plan("months", months)
    step = (period.weeks * 7 + period.days) * MILLIS_PER_DAY
    if not has_origin and nonzero[0] == 1:
        # roundFloor: local midnight; weeks start on Monday (1970-01-05).
        return plan("local_step", step, 4 * MILLIS_PER_DAY if period.weeks else 0)
    if zone.is_fixed:
        return plan("arith", step)
    return plan("local_step", step)


# ---- scalar ----------------------------------------------------------------------------------


def floor_scalar(p: FloorPlan, t: int) -> int:
    if p.kind == "arith":
        return t - (t - p.origin) % p.step
    z = p.zone
    local = t + z.offset(t)
    if p.kind == "local_unit":
        return z.local_to_utc(local - local % p.step, t)
    if p.kind == "local_step":
        return z.local_to_utc(local - (local - p.origin_local) % p.step)
    if p.kind == "months":
        y, m, _ = civil_from_days(local // MILLIS_PER_DAY)
        oy, om, _ = civil_from_days(p.origin_local // MILLIS_PER_DAY)
        k = ((y * 12 + m - 1) - (oy * 12 + om - 1)) // p.step * p.step
        cand = add_months_local(p.origin_local, k)
        if cand > local:
            cand = add_months_local(p.origin_local, k - p.step)
        return z.local_to_utc(cand)
    return _compound_floor(p, t)


def _compound_floor(p: FloorPlan, t: int) -> int:
    current = p.origin
    if t >= p.origin:
        nxt = p.origin
        while t >= nxt:
            current = nxt
            nxt = add_period(p.zone, current, p.period)
    else:
        while t < current:
            current = add_period(p.zone, current, p.period, -1)
    return current


# ---- vectorised ------------------------------------------------------------------------------


def offsets_vec(zone: Zone, t: I64) -> I64:
    """The zone's UTC offset at every instant, through Arrow's tz database kernels."""
    if zone.fixed_offset is not None:
        return np.full(t.shape, zone.fixed_offset, dtype=np.int64)
    clipped = np.clip(t, _CLIP_LO, _CLIP_HI)
    ts = pa.array(clipped, type=pa.timestamp("ms", tz=zone.id))
    local = pc.local_timestamp(ts).cast(pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(local, dtype=np.int64) - clipped


def local_to_utc_vec(zone: Zone, local: I64, hint: I64 | None = None) -> I64:
    """Vectorised ``Zone.local_to_utc`` (same rules, same answers)."""
    if zone.fixed_offset is not None:
        return local - zone.fixed_offset
    cands = [
        offsets_vec(zone, local - MILLIS_PER_DAY),
        offsets_vec(zone, local + MILLIS_PER_DAY),
        offsets_vec(zone, local),
    ]
    cands.append(offsets_vec(zone, local - cands[2]))
    stacked = np.stack(cands)
    valid = np.stack([offsets_vec(zone, local - c) == c for c in cands])
    best_valid = np.where(valid, stacked, np.iinfo(np.int64).min).max(axis=0)
    chosen = np.where(valid.any(axis=0), best_valid, stacked.min(axis=0))
    if hint is not None:
        o = offsets_vec(zone, hint)
        keep = offsets_vec(zone, local - o) == o
        chosen = np.where(keep, o, chosen)
    result: I64 = local - chosen
    return result


def _civil_vec(days: I64) -> tuple[I64, I64]:
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month


def _days_from_civil_vec(year: I64, month: I64, day: I64) -> I64:
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    result: I64 = era * 146097 + doe - 719468
    return result


def _add_months_vec(origin_local: int, k: I64) -> I64:
    odays, otod = divmod(origin_local, MILLIS_PER_DAY)
    oy, om, od = civil_from_days(odays)
    idx = oy * 12 + (om - 1) + k
    ny, nm0 = idx // 12, idx % 12
    leap = (ny % 4 == 0) & ((ny % 100 != 0) | (ny % 400 == 0))
    dim = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)[nm0]
    dim = dim + ((nm0 == 1) & leap)
    nd = np.minimum(od, dim)
    return _days_from_civil_vec(ny, nm0 + 1, nd) * MILLIS_PER_DAY + otod


def floor_vec(p: FloorPlan, t: I64) -> I64:
    if p.kind == "arith":
        result: I64 = t - np.mod(t - p.origin, p.step)
        return result
    z = p.zone
    local = t + offsets_vec(z, t)
    if p.kind == "local_unit":
        return local_to_utc_vec(z, local - np.mod(local, p.step), t)
    if p.kind == "local_step":
        return local_to_utc_vec(z, local - np.mod(local - p.origin_local, p.step))
    if p.kind == "months":
        y, m = _civil_vec(local // MILLIS_PER_DAY)
        oy, om, _ = civil_from_days(p.origin_local // MILLIS_PER_DAY)
        k = (y * 12 + m - 1 - (oy * 12 + om - 1)) // p.step * p.step
        cand = _add_months_vec(p.origin_local, k)
        cand = np.where(cand > local, _add_months_vec(p.origin_local, k - p.step), cand)
        return local_to_utc_vec(z, cand)
    return _compound_vec(p, t)


def _compound_vec(p: FloorPlan, t: I64) -> I64:
    if t.size == 0:
        return t.copy()
    lo, hi = int(t.min()), int(t.max())
    bounds = [floor_scalar(p, lo)]
    while bounds[-1] <= hi:
        if len(bounds) > MAX_COMPOUND_BUCKETS:
            raise ResourceLimitExceeded(
                f"Granularity period [{p.period}] makes more than {MAX_COMPOUND_BUCKETS} buckets"
            )
        bounds.append(add_period(p.zone, bounds[-1], p.period))
    arr = np.asarray(bounds, dtype=np.int64)
    result: I64 = arr[np.searchsorted(arr, t, side="right") - 1]
    return result
