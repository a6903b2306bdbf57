"""Tables the SQL text holds itself: ``SELECT`` without ``FROM`` and ``VALUES`` (pure).

Both become a small Arrow table that the planner treats like a system table: WHERE, GROUP BY,
aggregates, ORDER BY and LIMIT are evaluated at the broker (``execute._system_base``). Calcite
names the columns of ``VALUES`` ``EXPR$0``, ``EXPR$1``, ... unless the alias lists them
(``(VALUES ...) AS t(a, b)``).
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from common.query.sql.functions import Unsupported, evaluate

INLINE = "<inline>"


def no_from_table() -> pa.Table:
    """One row and no column the query can name: what ``SELECT 1 + 1`` is evaluated over."""
    return pa.table({"$row": pa.array([0], pa.int64())})


def values_table(values: exp.Values, now_ms: int, tz: str = "UTC") -> pa.Table:
    rows = [t.expressions if isinstance(t, exp.Tuple) else [t] for t in values.expressions]
    if not rows or len({len(r) for r in rows}) != 1:
        raise Unsupported("VALUES rows must all have the same number of columns")
    alias = values.args.get("alias")
    names = [c.name for c in alias.columns] if alias is not None and alias.columns else []
    width = len(rows[0])
    if names and len(names) != width:
        raise Unsupported(f"VALUES has {width} columns but the alias names {len(names)}")
    names = names or [f"EXPR${i}" for i in range(width)]
    columns = []
    for j in range(width):
        cells = [evaluate(r[j], {}, 1, now_ms, tz) for r in rows]
        if not all(isinstance(c, pa.Scalar) for c in cells):
            raise Unsupported("VALUES takes constant expressions only")
        typed = [c for c in cells if c.type != pa.null()]
        typ = typed[0].type if typed else pa.string()
        if any(c.type != typ for c in typed):
            if all(pa.types.is_integer(c.type) or pa.types.is_floating(c.type) for c in typed):
                typ = pa.float64()
            else:
                raise Unsupported(f"VALUES column [{names[j]}] mixes types")
        columns.append(pa.array([c.cast(typ).as_py() if c.is_valid else None for c in cells], typ))
    return pa.table(dict(zip(names, columns, strict=True)))


def native_types(table: pa.Table) -> dict[str, str]:
    """Druid's column types of an inline table."""
    out: dict[str, str] = {}
    for field in table.schema:
        t = field.type
        if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_timestamp(t):
            out[field.name] = "LONG"
        elif pa.types.is_floating(t):
            out[field.name] = "DOUBLE"
        else:
            out[field.name] = "STRING"
    return out
