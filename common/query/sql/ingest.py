"""SQL ingestion: ``INSERT INTO`` / ``REPLACE INTO ... OVERWRITE`` over ``TABLE(EXTERN(...))``
planned onto a native batch ``index_parallel`` task (what ``POST /druid/v2/sql/task`` runs).

Accepted (Druid's MSQ syntax), everything else is a 400 naming what is not supported::

    INSERT INTO "ds" | REPLACE INTO "ds" OVERWRITE ALL | OVERWRITE WHERE __time >= TIMESTAMP '..'
                                                                 AND __time < TIMESTAMP '..'
    SELECT TIME_PARSE("ts") AS __time | MILLIS_TO_TIMESTAMP("ms") AS __time,
           "col", "col" AS alias, CAST("col" AS BIGINT|DOUBLE|FLOAT|VARCHAR) AS alias, ...
    FROM TABLE(EXTERN('<inputSource JSON>', '<inputFormat JSON>', '<signature JSON>'))
         (or EXTERN(inputSource => '..', inputFormat => '..') EXTEND ("c" VARCHAR, ...))
    [WHERE comparisons of EXTERN columns with literals: = <> < <= > >= IN, IS [NOT] NULL, AND, OR]
    PARTITIONED BY DAY | HOUR | MONTH | YEAR | ALL [TIME] | '<ISO period>'
                   | TIME_FLOOR(__time, '<period>') | FLOOR(__time TO DAY)

The SELECT has no GROUP BY, so there is no rollup: every selected column other than ``__time``
is a dimension, typed by the signature or the CAST, and the table has no metrics (Druid's INSERT
without GROUP BY). ``INSERT`` appends (``appendToExisting``); ``REPLACE`` overwrites the interval
(``OVERWRITE ALL``: all time) and drops what the new data does not cover (``dropExisting``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlglot import exp

from common.errors import PlanValidationError, SqlParseError
from common.query.sql.parse import parse_sql
from common.segments.granularity import parse_granularity
from common.segments.intervals import Interval
from common.segments.isotime import format_iso, to_millis

EXTERN_TABLE = "__kdruid_extern__"
#: ``OVERWRITE ALL``: Druid's eternity, as far as the timestamp parser goes.
ALL_TIME = "1000-01-01T00:00:00.000Z/3000-01-01T00:00:00.000Z"
MISSING_TIME_COLUMN = "__kdruid_no_time__"
_HEAD = re.compile(
    r"^\s*(?P<verb>INSERT|REPLACE)\s+INTO\s+(?P<table>\"(?:[^\"]|\"\")+\"|[A-Za-z_][\w]*)\s*",
    re.IGNORECASE,
)
_OVERWRITE = re.compile(r"^OVERWRITE\s+(?:(?P<all>ALL)\b|WHERE\s+)", re.IGNORECASE)
_SELECT = re.compile(r"\b(SELECT|WITH)\b", re.IGNORECASE)
_TAIL = re.compile(
    r"\bPARTITIONED\s+BY\s+(?P<gran>.+?)\s*(?:\bCLUSTERED\s+BY\s+(?P<clustered>.+?))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_EXTERN = re.compile(r"\bTABLE\s*\(\s*EXTERN\s*\(", re.IGNORECASE)
_NAMED = re.compile(r"\s*(\w+)\s*=>\s*", re.IGNORECASE)
_GRANULARITY_WORDS = {
    "HOUR": "HOUR",
    "DAY": "DAY",
    "WEEK": "WEEK",
    "MONTH": "MONTH",
    "QUARTER": "QUARTER",
    "YEAR": "YEAR",
    "ALL": "ALL",
    "ALL TIME": "ALL",
    "MINUTE": "MINUTE",
    "SECOND": "SECOND",
}
_SQL_TYPES = {
    "VARCHAR": "string",
    "CHAR": "string",
    "TEXT": "string",
    "BIGINT": "long",
    "INT": "long",
    "INTEGER": "long",
    "DOUBLE": "double",
    "FLOAT": "float",
}
_SIGNATURE_TYPES = {"string": "string", "long": "long", "double": "double", "float": "float"}


@dataclass(frozen=True)
class Extern:
    input_source: dict[str, Any]
    input_format: dict[str, Any]
    signature: dict[str, str]  # column -> string | long | double | float


def _unsupported(what: str) -> PlanValidationError:
    return PlanValidationError(f"SQL ingestion does not support {what}")


def _ident(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _string_literal(text: str, pos: int) -> tuple[str, int]:
    """The SQL string literal starting at ``text[pos]`` (a quote) and the position after it."""
    if pos >= len(text) or text[pos] != "'":
        raise SqlParseError("EXTERN arguments must be SQL string literals")
    out = []
    i = pos + 1
    while i < len(text):
        if text[i] == "'":
            if text[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(text[i])
        i += 1
    raise SqlParseError("Unterminated string literal in EXTERN")


def _json_arg(name: str, value: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise PlanValidationError(f"EXTERN {name} is not valid JSON: {e}") from None


def _extend_columns(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        words = part.split()
        if len(words) != 2:
            raise SqlParseError(f"EXTEND column [{part.strip()}] must be '<name> <type>'")
        kind = _SQL_TYPES.get(words[1].upper())
        if kind is None:
            raise _unsupported(f"EXTEND column type [{words[1]}]")
        out[_ident(words[0])] = kind
    return out


def cut_extern(sql: str) -> tuple[str, Extern]:
    """Replace ``TABLE(EXTERN(...)) [EXTEND (...)]`` by a placeholder table name."""
    m = _EXTERN.search(sql)
    if m is None:
        raise _unsupported("a source other than TABLE(EXTERN(...))")
    pos = m.end()
    args: dict[str, str] = {}
    order = ("inputSource", "inputFormat", "signature")
    n = 0
    while True:
        named = _NAMED.match(sql, pos)
        key = order[n] if n < 3 else "?"
        if named:
            key = named.group(1)
            pos = named.end()
        while pos < len(sql) and sql[pos].isspace():
            pos += 1
        value, pos = _string_literal(sql, pos)
        args[key] = value
        n += 1
        while pos < len(sql) and sql[pos].isspace():
            pos += 1
        if pos < len(sql) and sql[pos] == ",":
            pos += 1
            continue
        break
    close = re.compile(r"\s*\)\s*\)").match(sql, pos)
    if close is None:
        raise SqlParseError("EXTERN(...) must be closed by '))'")
    pos = close.end()
    unknown = set(args) - set(order)
    if unknown:
        raise _unsupported(f"EXTERN arguments {sorted(unknown)}")
    signature: dict[str, str] = {}
    extend = re.compile(r"\s*EXTEND\s*\(([^)]*)\)", re.IGNORECASE).match(sql, pos)
    if extend is not None:
        signature = _extend_columns(extend.group(1))
        pos = extend.end()
    if "signature" in args:
        for col in _json_arg("signature", args["signature"]) or []:
            if not isinstance(col, dict) or not col.get("name"):
                raise PlanValidationError("EXTERN signature must be a list of {name, type}")
            kind = _SIGNATURE_TYPES.get(str(col.get("type") or "string").lower())
            if kind is None:
                raise _unsupported(f"EXTERN column type [{col.get('type')}]")
            signature[str(col["name"])] = kind
    if "inputSource" not in args or "inputFormat" not in args:
        raise PlanValidationError("EXTERN needs inputSource and inputFormat")
    source = _json_arg("inputSource", args["inputSource"])
    fmt = _json_arg("inputFormat", args["inputFormat"])
    if not signature:
        raise PlanValidationError("EXTERN needs a signature (third argument or EXTEND)")
    extern = Extern(source, fmt, signature)
    return sql[: m.start()] + EXTERN_TABLE + sql[pos:], extern


def _granularity(text: str) -> Any:
    t = " ".join(text.split()).upper()
    if t in _GRANULARITY_WORDS:
        return _GRANULARITY_WORDS[t]
    m = re.fullmatch(r"'(P[^']+)'", text.strip(), re.IGNORECASE) or re.fullmatch(
        r"TIME_FLOOR\s*\(\s*\"?__time\"?\s*,\s*'(P[^']+)'\s*\)", text.strip(), re.IGNORECASE
    )
    if m:
        return {"type": "period", "period": m.group(1).upper()}
    m = re.fullmatch(r"FLOOR\s*\(\s*\"?__time\"?\s+TO\s+(\w+)\s*\)", text.strip(), re.IGNORECASE)
    if m and m.group(1).upper() in _GRANULARITY_WORDS:
        return _GRANULARITY_WORDS[m.group(1).upper()]
    raise PlanValidationError(
        f"Invalid granularity [{text.strip()}] after PARTITIONED BY. Expected HOUR, DAY, MONTH, "
        "YEAR, ALL TIME, FLOOR() or TIME_FLOOR()"
    )


def _literal(node: exp.Expression) -> Any:
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -_literal(node.this)
    raise _unsupported(f"the expression [{node.sql()}] where a literal is expected")


def _column(node: exp.Expression, columns: dict[str, str]) -> str:
    if not isinstance(node, exp.Column) or node.table:
        raise _unsupported(f"the expression [{node.sql()}] (only EXTERN columns and literals)")
    if node.name not in columns:
        raise PlanValidationError(f"Column '{node.name}' not found in EXTERN's signature")
    return node.name


def _filter(node: exp.Expression, columns: dict[str, str]) -> dict[str, Any]:
    """A WHERE clause as Druid filter JSON (SQL null semantics: no comparison matches null)."""
    if isinstance(node, exp.Paren):
        return _filter(node.this, columns)
    if isinstance(node, exp.And | exp.Or):
        kind = "and" if isinstance(node, exp.And) else "or"
        parts = [cast(exp.Expression, node.left), cast(exp.Expression, node.right)]
        return {"type": kind, "fields": [_filter(p, columns) for p in parts]}
    if isinstance(node, exp.Is):
        col = _column(node.this, columns)
        if not isinstance(node.expression, exp.Null):
            raise _unsupported(f"[{node.sql()}]")
        return {"type": "null", "column": col}
    if isinstance(node, exp.Not) and isinstance(node.this, exp.Is):
        return {"type": "not", "field": _filter(node.this, columns)}
    if isinstance(node, exp.In):
        col = _column(node.this, columns)
        values = [_literal(v) for v in node.expressions]
        if not values or node.args.get("query") is not None:
            raise _unsupported(f"[{node.sql()}]")
        return {"type": "in", "dimension": col, "values": [str(v) for v in values]}
    ops = {exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
    for cls, op in ops.items():
        if isinstance(node, cls):
            left, right = cast(exp.Expression, node.left), cast(exp.Expression, node.right)
            if isinstance(left, exp.Literal) and isinstance(right, exp.Column):
                flip = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
                left, right, op = right, left, flip.get(op, op)
            col = _column(left, columns)
            value = _literal(right)
            if op == "=":
                return {"type": "selector", "dimension": col, "value": str(value)}
            if op == "<>":
                not_null = {"type": "not", "field": {"type": "null", "column": col}}
                eq = {"type": "selector", "dimension": col, "value": str(value)}
                return {"type": "and", "fields": [not_null, {"type": "not", "field": eq}]}
            numeric = not isinstance(value, str)
            bound: dict[str, Any] = {
                "type": "bound",
                "dimension": col,
                "ordering": "numeric" if numeric else "lexicographic",
            }
            side = "lower" if op in (">", ">=") else "upper"
            bound[side] = str(value)
            bound[f"{side}Strict"] = op in (">", "<")
            return bound
    raise _unsupported(f"the condition [{node.sql()}] in WHERE")


def _overwrite_interval(text: str, gran: Any) -> Interval:
    """``OVERWRITE WHERE __time >= TIMESTAMP 'a' AND __time < TIMESTAMP 'b'``."""
    stmt = parse_sql(f"SELECT 1 FROM t WHERE {text}")
    where = stmt.select.args.get("where")
    assert where is not None
    parts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    lo: int | None = None
    hi: int | None = None
    for p in parts:
        assert isinstance(p, exp.Expression)
        if not isinstance(p, exp.GTE | exp.LT) or not (
            isinstance(p.left, exp.Column) and p.left.name == "__time"
        ):
            raise _unsupported(
                f"[{p.sql()}] in OVERWRITE WHERE (use __time >= TIMESTAMP '..' AND __time < "
                "TIMESTAMP '..')"
            )
        right = p.right
        literal = right.this if isinstance(right, exp.Cast) else right
        if not isinstance(literal, exp.Literal) or not literal.is_string:
            raise _unsupported(f"[{right.sql()}] as a time bound")
        t = to_millis(literal.this.replace(" ", "T"))
        if isinstance(p, exp.GTE):
            lo = t
        else:
            hi = t
    if lo is None or hi is None or hi <= lo:
        raise PlanValidationError(
            "OVERWRITE WHERE needs __time >= a lower AND __time < an upper bound"
        )
    g = parse_granularity(gran)
    if gran != "ALL" and (g.bucket_start(lo) != lo or g.bucket_start(hi) != hi):
        raise PlanValidationError(
            f"OVERWRITE WHERE clause identified interval [{Interval(lo, hi)}] which is not "
            "aligned with PARTITIONED BY granularity"
        )
    return Interval(lo, hi)


def plan_ingest(sql: str, task_id: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``index_parallel`` task for an INSERT or REPLACE statement."""
    head = _HEAD.match(sql)
    if head is None:
        raise SqlParseError("Expected INSERT INTO or REPLACE INTO at the start of the statement")
    verb = head.group("verb").upper()
    datasource = _ident(head.group("table"))
    rest = sql[head.end() :]
    overwrite: str | None = None
    if verb == "REPLACE":
        ow = _OVERWRITE.match(rest)
        if ow is None:
            raise SqlParseError("REPLACE INTO needs OVERWRITE ALL or OVERWRITE WHERE ...")
        sel = _SELECT.search(rest, ow.end())
        if sel is None:
            raise SqlParseError("Expected SELECT after OVERWRITE")
        overwrite = "ALL" if ow.group("all") else rest[ow.end() : sel.start()].strip()
        rest = rest[sel.start() :]
    tail = _TAIL.search(rest)
    if tail is None:
        raise PlanValidationError(
            f"Operation [{verb}] requires a PARTITIONED BY to be explicitly defined, but none "
            "was found."
        )
    if tail.group("clustered"):
        raise _unsupported("CLUSTERED BY")
    gran = _granularity(tail.group("gran"))
    select_sql, extern = cut_extern(rest[: tail.start()])
    select = parse_sql(select_sql).select
    if not isinstance(select, exp.Select):
        raise _unsupported("UNION and other set operations")
    for key in ("group", "having", "order", "limit", "offset", "joins", "with", "distinct"):
        if select.args.get(key):
            raise _unsupported(key.upper().replace("JOINS", "JOIN") + " in the SELECT")
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or table.name != EXTERN_TABLE:
        raise _unsupported("a source other than TABLE(EXTERN(...))")
    columns = extern.signature
    timestamp: dict[str, Any] | None = None
    dimensions: list[dict[str, Any]] = []
    transforms: list[dict[str, Any]] = []
    for item in select.expressions:
        alias = item.alias_or_name
        node = item.this if isinstance(item, exp.Alias) else item
        if isinstance(node, exp.Star):
            raise _unsupported("SELECT * (name the columns)")
        if alias == "__time":
            name = node.name.upper() if isinstance(node, exp.Anonymous) else type(node).__name__
            fn = {"TIME_PARSE": "iso", "MILLIS_TO_TIMESTAMP": "millis", "UnixToTime": "millis"}
            args = node.expressions if isinstance(node, exp.Anonymous) else [node.this]
            if name not in fn or len(args) != 1:
                raise _unsupported(
                    f"[{node.sql()}] as __time (use TIME_PARSE(col) or MILLIS_TO_TIMESTAMP(col))"
                )
            timestamp = {"column": _column(args[0], columns), "format": fn[name]}
            continue
        kind: str
        if isinstance(node, exp.Cast):
            col = _column(node.this, columns)
            target = node.to.this.name if node.to.this is not None else ""
            mapped = _SQL_TYPES.get(str(target).upper()) or _SQL_TYPES.get(node.to.sql().upper())
            if mapped is None:
                raise _unsupported(f"CAST to [{node.to.sql()}]")
            kind = mapped
        else:
            col = _column(node, columns)
            kind = columns[col]
        if alias != col:
            transforms.append(
                {
                    "type": "expression",
                    "name": alias,
                    "expression": '"' + col.replace('"', '\\"') + '"',
                }
            )
        dimensions.append({"type": kind, "name": alias})
    names = [d["name"] for d in dimensions]
    if len(set(names)) != len(names):
        raise PlanValidationError(f"Duplicate output column names in {names}")
    where = select.args.get("where")
    row_filter = _filter(where.this, columns) if where is not None else None
    intervals: list[str] | None = None
    if overwrite == "ALL":
        intervals = [ALL_TIME]
    elif overwrite is not None:
        intervals = [str(_overwrite_interval(overwrite, gran))]
    data_schema: dict[str, Any] = {
        "dataSource": datasource,
        "timestampSpec": timestamp
        or {"column": MISSING_TIME_COLUMN, "format": "millis", "missingValue": format_iso(0)},
        "dimensionsSpec": {"dimensions": dimensions},
        "metricsSpec": [],
        "transformSpec": {"transforms": transforms, "filter": row_filter},
        "granularitySpec": {
            "segmentGranularity": gran,
            "queryGranularity": "NONE",
            "rollup": False,
            "intervals": intervals,
        },
    }
    return {
        "type": "index_parallel",
        "id": task_id,
        "spec": {
            "dataSchema": data_schema,
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": extern.input_source,
                "inputFormat": extern.input_format,
                "appendToExisting": verb == "INSERT",
                "dropExisting": verb == "REPLACE",
            },
            "tuningConfig": {"type": "index_parallel"},
        },
        "context": {**(context or {}), "sqlInsertSegmentGranularity": orjson.dumps(gran).decode()},
    }
