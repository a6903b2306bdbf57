"""Turn a native query's finalized JSON (or a system table) into the SQL result (pure).

The native result becomes an Arrow table of base columns (``__time``, ``d0..``, ``a0..``); then,
vectorised: Druid's AVG/theta result types, HAVING, the select list, ORDER BY (nulls first
ascending, last descending, as Druid), OFFSET and LIMIT. System tables (INFORMATION_SCHEMA,
sys) take the same path after a local WHERE and GROUP BY (pyarrow's hash aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from common.query.engine import arraykeys
from common.query.engine.base import json_rows
from common.query.sql.arrays import ARRAY_ELEMENT, sql_array_type
from common.query.sql.functions import TS, Unsupported, evaluate, java_double, to_array
from common.query.sql.planner import Plan
from common.query.sql.where import TIME

_ARROW = {"LONG": pa.int64(), "DOUBLE": pa.float64(), "FLOAT": pa.float64(), "STRING": pa.string()}


@dataclass
class ResultSet:
    names: list[str]
    native_types: list[str]  # Druid's column types (typesHeader)
    sql_types: list[str]  # SQL types (sqlTypesHeader)
    columns: list[pa.Array]
    time_zone: str = "UTC"  # sqlTimeZone: TIMESTAMP values print in it, as Druid
    stringify_arrays: bool = True  # sqlStringifyArrays: ARRAY values as JSON text, as Druid

    @property
    def num_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def rows(self) -> list[list[Any]]:
        """Row values as JSON-ready Python objects (timestamps as Druid's ISO text), arrays
        and multi-value strings as Druid's ``SqlResults.coerce`` writes them."""
        pys = [json_values(c, self.time_zone, self.stringify_arrays) for c in self.columns]
        return [list(r) for r in zip(*pys, strict=True)] if pys else []


@dataclass
class NativeTable:
    """A groupBy's or scan's finalized rows as columns (``groupby.finalized_table``,
    ``scan.finalized_table``): what the broker hands the SQL layer instead of the rows of
    Druid's JSON, which it would only turn back into columns."""

    table: pa.Table


def native_base(plan: Plan, result: list[dict[str, Any]] | NativeTable) -> pa.Table:
    """The native result as a table of base columns."""
    if isinstance(result, NativeTable):
        if plan.query_type == "scan":
            return _scan_table_base(plan, result.table)
        return _table_base(plan, result.table)
    if plan.query_type == "scan":
        return _scan_base(plan, result)
    records: list[dict[str, Any]] = []
    if plan.query_type == "timeseries":
        records = [{TIME: r["timestamp"], **r["result"]} for r in result]
    elif plan.query_type == "topN":
        records = [{TIME: r["timestamp"], **row} for r in result for row in r["result"]]
    elif plan.query_type == "groupBy":
        records = [{TIME: r["timestamp"], **r["event"]} for r in result]
    if plan.exact_distinct is not None:
        return _count_distinct(plan, records)
    names = [TIME, *[d for d, _ in plan.dims], *[a.name for a in plan.aggs]]
    cols: dict[str, pa.Array] = {}
    for name in names:
        values = [r.get(name) for r in records]
        if name == TIME:
            # Without a time key the timestamp is the query's start (possibly outside what
            # Arrow can hold), and nothing reads it.
            cols[name] = (
                pc.cast(pa.array(values, pa.string()), TS)
                if plan.has_time_key
                else pa.nulls(len(values), TS)
            )
        else:
            cols[name] = _typed(values, plan.base_types.get(name, "STRING"))
    return pa.table(cols)


def _table_base(plan: Plan, table: pa.Table) -> pa.Table:
    """``native_base`` of a groupBy's finalized columns: the same columns as from its JSON rows
    (``_typed`` of each column's Python values), converted in Arrow where that is exact."""
    if plan.exact_distinct is not None:
        return _count_distinct(plan, table.to_pylist())
    cols: dict[str, pa.Array] = {}
    for name in [TIME, *[d for d, _ in plan.dims], *[a.name for a in plan.aggs]]:
        if name == TIME and not plan.has_time_key:
            cols[name] = pa.nulls(table.num_rows, TS)
        else:  # the row's timestamp is the one the JSON rows would print and parse back
            cols[name] = _native_column(plan, table, name)
    return pa.table(cols)


def _native_column(plan: Plan, table: pa.Table, name: str) -> pa.Array:
    """Column ``name`` of a native query's finalized columns as the base column its JSON rows
    would give: ``__time`` as a TIMESTAMP, the others typed by ``_arrow_typed``, a column the
    table lacks all null."""
    if name not in table.column_names:
        return _typed([None] * table.num_rows, plan.base_types.get(name, "STRING"))
    if name == TIME:
        return table.column(TIME).cast(pa.int64()).combine_chunks().cast(TS)
    return _arrow_typed(table.column(name), plan.base_types.get(name, "STRING"))


def _arrow_typed(col: pa.ChunkedArray, native_type: str) -> pa.Array:
    """``_typed(<the column's JSON values>, native_type)`` without Python values when the Arrow
    type already says what ``_typed`` would make of them."""
    typ = col.type
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if native_type == "LONG" and pa.types.is_integer(typ):
        return col.cast(pa.int64()).combine_chunks()
    if native_type in ("DOUBLE", "FLOAT") and pa.types.is_floating(typ):
        return col.cast(pa.float64()).combine_chunks()
    if native_type == "STRING" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return col.cast(pa.string()).combine_chunks()
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        values = [row["v"] for row in json_rows(pa.table({"v": col}))]  # base64, as the JSON
        return _typed(values, native_type)
    return _typed(col.to_pylist(), native_type)


def _count_distinct(plan: Plan, records: list[dict[str, Any]]) -> pa.Table:
    """Exact COUNT(DISTINCT): count the non-null values per group of the groupBy's rows
    (each row is one distinct (dimensions, value) combination)."""
    value = plan.exact_distinct
    assert value is not None
    keys = [d for d, _ in plan.dims]
    cols = {k: _typed([r.get(k) for r in records], plan.base_types[k]) for k in [*keys, value]}
    grouped = (
        pa.table(cols)
        .group_by(keys, use_threads=False)
        .aggregate([(value, "count", pc.CountOptions(mode="only_valid"))])
    )
    name = plan.aggs[0].name
    out: dict[str, Any] = {TIME: pa.nulls(grouped.num_rows, TS)}
    for k in keys:
        out[k] = grouped.column(k)
    out[name] = grouped.column(f"{value}_count")
    if not keys and grouped.num_rows == 0:
        out = {TIME: pa.nulls(1, TS), name: pa.array([0], pa.int64())}
    return pa.table(out)


def _scan_base(plan: Plan, result: list[dict[str, Any]]) -> pa.Table:
    assert plan.native is not None
    names: list[str] = list(plan.native["columns"])
    rows = [ev for batch in result for ev in batch["events"]]
    cols: dict[str, pa.Array] = {}
    for i, name in enumerate(names):
        values = [r[i] for r in rows]
        if name == TIME:
            cols[name] = pa.array(values, pa.int64()).cast(TS)
        else:
            cols[name] = _typed(values, plan.base_types.get(name, "STRING"))
    return pa.table(cols)


def _scan_table_base(plan: Plan, table: pa.Table) -> pa.Table:
    """``_scan_base`` of a scan's finalized columns (``scan.finalized_table``)."""
    assert plan.native is not None
    return pa.table({name: _native_column(plan, table, name) for name in plan.native["columns"]})


def _typed(values: list[Any], native_type: str) -> pa.Array:
    if native_type == "TIMESTAMP":  # a timestamp-valued virtual column: millis
        return pa.array(values, pa.int64()).cast(TS)
    if native_type == "BOOLEAN":  # a condition's virtual column: 1/0
        return pc.not_equal(pa.array(values, pa.int64()), 0)
    if native_type in ARRAY_ELEMENT:  # an SQL ARRAY: a large_list at the broker
        return pa.array(
            [v if v is None or isinstance(v, list) else [v] for v in values],
            sql_array_type(native_type),
        )
    typ = _ARROW.get(native_type)
    if typ is None:
        return pa.array(values)
    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    if any(isinstance(v, list) for v in values):
        # Multi-value strings: native scan prints a one-value row as the value itself (as Druid);
        # the column stays a list column here.
        lists = [v if v is None or isinstance(v, list) else [v] for v in values]
        return pa.array(lists, pa.list_(pa.string()))
    return pa.array(values)


def post_process(plan: Plan, base: pa.Table) -> ResultSet:
    """Apply what the native query could not do, and evaluate the select list."""
    if plan.system:
        base = _system_base(plan, base)
    n = base.num_rows
    cols: dict[str, Any] = {name: base.column(name) for name in base.column_names}
    if n == 0 and plan.aggregate_all and plan.native is not None:
        cols = {
            name: pa.array(
                [0]
                if any(a.name == name and a.kind in ("count", "builtin", "hll") for a in plan.aggs)
                else [None],
                col.type,
            )
            for name, col in cols.items()
        }
        n = 1
    for a in plan.aggs:
        if a.name not in cols:
            continue
        if a.timestamp:
            cols[a.name] = cols[a.name].cast(TS)
        elif a.truncate:
            cols[a.name] = pc.trunc(cols[a.name]).cast(pa.int64())
        elif a.round:
            cols[a.name] = pc.round(cols[a.name]).cast(pa.int64())
    if plan.having is not None:
        mask = pc.fill_null(
            to_array(evaluate(plan.having, cols, n, plan.now_ms, plan.time_zone), n), False
        )
        cols = {k: pc.filter(v, mask) for k, v in cols.items()}
        n = int(pc.sum(mask.cast(pa.int64())).as_py() or 0)
    outputs = [
        to_array(evaluate(e, cols, n, plan.now_ms, plan.time_zone), n) for _, e in plan.outputs
    ]
    if plan.order:
        by_name = dict(zip((name for name, _ in plan.outputs), outputs, strict=True))
        keys: dict[str, Any] = {}
        sort: list[tuple[str, str]] = []
        for i, (e, desc) in enumerate(plan.order):
            v = to_array(evaluate(e, {**by_name, **cols}, n, plan.now_ms, plan.time_zone), n)
            if arraykeys.is_array(v.type):
                v = arraykeys.rank(v)  # Druid's array order
            keys[f"n{i}"] = pc.is_null(v)
            keys[f"k{i}"] = v
            # nulls first ascending, last descending
            sort += [(f"n{i}", "ascending" if desc else "descending")]
            sort += [(f"k{i}", "descending" if desc else "ascending")]
        idx = pc.sort_indices(pa.table(keys), sort_keys=sort)
        outputs = [pc.take(o, idx) for o in outputs]
    if plan.offset or plan.limit is not None:
        stop = None if plan.limit is None else plan.offset + plan.limit
        outputs = [o[plan.offset : stop] for o in outputs]
    outputs = [o.combine_chunks() if isinstance(o, pa.ChunkedArray) else o for o in outputs]
    names = [name for name, _ in plan.outputs]
    types = [_types(o.type) for o in outputs]
    for i, (_, e) in enumerate(plan.outputs):
        # A sketch (DS_HLL...) travels as its base64 text; its type is the complex one.
        native = plan.base_types.get(e.name, "") if isinstance(e, exp.Column) else ""
        if native.startswith("COMPLEX"):
            types[i] = (native, "OTHER")
    return ResultSet(names, [t[0] for t in types], [t[1] for t in types], outputs)


def _types(typ: pa.DataType) -> tuple[str, str]:
    if pa.types.is_timestamp(typ):
        return "LONG", "TIMESTAMP"
    if pa.types.is_integer(typ):
        return "LONG", "BIGINT"
    if pa.types.is_float32(typ):
        return "FLOAT", "FLOAT"
    if pa.types.is_floating(typ):
        return "DOUBLE", "DOUBLE"
    if pa.types.is_boolean(typ):
        return "LONG", "BOOLEAN"
    if pa.types.is_large_list(typ):  # an SQL ARRAY
        elem = typ.value_type
        name = (
            "LONG"
            if pa.types.is_integer(elem)
            else "DOUBLE"
            if pa.types.is_floating(elem)
            else "STRING"
        )
        return f"ARRAY<{name}>", "ARRAY"
    if pa.types.is_list(typ):  # a multi-value string
        return "STRING", "VARCHAR"
    if pa.types.is_binary(typ):
        return "COMPLEX", "OTHER"
    return "STRING", "VARCHAR"


def _system_base(plan: Plan, table: pa.Table) -> pa.Table:
    n = table.num_rows
    cols = {name: table.column(name) for name in table.column_names}
    if plan.filter_expr is not None:
        mask = pc.fill_null(
            to_array(evaluate(plan.filter_expr, cols, n, plan.now_ms, plan.time_zone), n), False
        )
        table = table.filter(mask)
    if plan.computed:
        n = table.num_rows
        cols = {name: table.column(name) for name in table.column_names}
        for name, e in plan.computed.items():
            table = table.append_column(
                name, to_array(evaluate(e, cols, n, plan.now_ms, plan.time_zone), n)
            )
    if not plan.aggs and not plan.dims:
        return table
    keys = [col for _, col in plan.dims]
    specs: list[tuple[str, str]] = []
    work = table
    for a in plan.aggs:
        if a.kind == "count" and a.column is None:
            work = work.append_column(
                f"__one{a.name}", pa.repeat(pa.scalar(1, pa.int64()), work.num_rows)
            )
            specs.append((f"__one{a.name}", "count"))
        elif a.kind in ("count", "sum", "min", "max"):
            specs.append((a.column or "", a.kind))
        elif a.kind == "avg":
            specs.append((a.column or "", "mean"))
        elif a.kind == "builtin":
            specs.append((a.column or "", "count_distinct"))
        else:
            raise Unsupported(f"Aggregate [{a.kind}] on a system table is not supported")
    grouped = work.group_by(keys, use_threads=False).aggregate(specs)
    out: dict[str, Any] = {TIME: pa.nulls(grouped.num_rows, TS)}
    for name, col in plan.dims:
        out[name] = grouped.column(col)
    for a, (col, fn) in zip(plan.aggs, specs, strict=True):
        out[a.name] = grouped.column(f"{col}_{fn}")
    result = pa.table(out)
    if result.num_rows == 0 and plan.aggregate_all:
        zero = {
            name: pa.array([0 if name.startswith("a") and _counts(plan, name) else None], col.type)
            for name, col in out.items()
        }
        result = pa.table(zero)
    return result


def _counts(plan: Plan, name: str) -> bool:
    return any(a.name == name and a.kind in ("count", "builtin") for a in plan.aggs)


def json_values(col: pa.Array, time_zone: str = "UTC", stringify: bool = True) -> list[Any]:
    if pa.types.is_large_list(col.type):
        # An SQL ARRAY: JSON text (sqlStringifyArrays, the default) or a JSON array.
        values = col.to_pylist()
        return [_json_text(v) for v in values] if stringify else values
    if pa.types.is_list(col.type):
        # A multi-value VARCHAR: a row of one value is that value, a null row null, others
        # (several values, or an expression's empty array) the JSON text of the list
        # (SqlResults.coerce).
        return [_mv_text(v) for v in col.to_pylist()]
    return _plain_values(col, time_zone)


def _json_text(v: list[Any] | None) -> str | None:
    if v is None:
        return None
    return "[" + ",".join(_json_item(x) for x in v) + "]"


def _json_item(x: Any) -> str:
    if isinstance(x, float):
        return java_double(x)
    if isinstance(x, list):
        return _json_text(x) or "null"
    return orjson.dumps(x).decode()


def _mv_text(v: list[Any] | None) -> Any:
    if v is None:
        return None
    if len(v) == 1:
        return v[0]
    return _json_text(v)  # an empty array (e.g. MV_SLICE past the end) is "[]", as Druid


def _plain_values(col: pa.Array, time_zone: str = "UTC") -> list[Any]:
    if pa.types.is_timestamp(col.type):
        if time_zone in UTC_ZONES:
            texts: list[Any] = iso_utc_array(col.cast(TS)).to_pylist()
            return texts
        # Joda's ISODateTimeFormat.dateTime(): the local time, then the offset (+hh:mm, or Z).
        local = col.cast(pa.timestamp("ms", tz=time_zone))
        text = pc.strftime(local, format="%Y-%m-%dT%H:%M:%S%z")
        return [_offset(t) for t in text.to_pylist()]
    return list(col.to_pylist())


#: Years 1 to 9999, where numpy's ISO text is Joda's (four-digit years).
_ISO_MILLIS = (-62_135_596_800_000, 253_402_300_799_999)


_DAY_MS = 86_400_000
#: ``sqlTimeZone`` values that print timestamps in UTC (``...Z``).
UTC_ZONES = frozenset({"UTC", "Z", "Etc/UTC"})


def iso_utc_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Timestamps (ms) as ``2024-01-01T00:00:00.000Z``, Joda's ISO text in UTC, a string array
    (null for null) built in Arrow: each day's date once (numpy's ``datetime_as_string`` of the
    days in the column's range), the time of day from integer parts; Arrow's ``strftime``
    (the reference, 5x slower) for years outside 1-9999."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    millis = col.cast(pa.int64())
    low, high = (v.as_py() for v in pc.min_max(millis).values())
    if low is None or low < _ISO_MILLIS[0] or high > _ISO_MILLIS[1]:
        return pc.strftime(col.cast(TS), format="%Y-%m-%dT%H:%M:%SZ")
    stamps = np.asarray(pc.fill_null(millis, low).to_numpy(zero_copy_only=False))
    day, clock = np.divmod(stamps, _DAY_MS)
    first = low // _DAY_MS
    span = np.arange(first, high // _DAY_MS + 1)
    if len(span) <= max(len(stamps), 1):
        days, at = span, day - first
    else:  # a few stamps far apart: only their own days
        days, at = np.unique(day, return_inverse=True)
    names = np.datetime_as_string(days.astype("datetime64[D]"), unit="D").tolist()
    dates = pa.array(names, pa.string()).take(pa.array(at))
    hours, clock = np.divmod(clock, 3_600_000)
    minutes, clock = np.divmod(clock, 60_000)
    seconds, ms = np.divmod(clock, 1000)
    text = pc.binary_join_element_wise(
        dates,
        "T",
        _digits(hours, 2),
        ":",
        _digits(minutes, 2),
        ":",
        _digits(seconds, 2),
        ".",
        _digits(ms, 3),
        "Z",
        "",
    )
    if millis.null_count:
        text = pc.if_else(millis.is_valid(), text, pa.scalar(None, pa.string()))
    return text


def _digits(values: Any, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0")


def _offset(text: str | None) -> str | None:
    if text is None:
        return None
    body, off = text[:-5], text[-5:]
    return body + "Z" if off in ("+0000", "-0000") else f"{body}{off[:3]}:{off[3:]}"
