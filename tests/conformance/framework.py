"""The conformance suite's cases and how each is checked.

A page of cases is a module ``tests/conformance/cases_<name>.py`` defining

- ``PAGE``: the ``Page`` of Druid's documentation the cases come from, and
- ``CASES``: a list of ``Case``, one or more per documented function or operator.

Every ``cases_*.py`` module is found by ``pages()``; nothing else needs registering. Each case is
checked three ways (``test_conformance.py``):

1. **sql**: the SQL answer over HTTP equals ``expected`` (Druid's documented answer, or Druid's
   own test answer over the ``foo``/``numfoo`` fixtures). ``Refused("NAME")`` expects a 400
   whose message names ``NAME`` instead: a function kdruid does not build.
2. **native**: the equivalent native query answers the same rows. By default (``DERIVE``) it is
   the native query of kdruid's own ``EXPLAIN PLAN FOR``, posted to ``/druid/v2``; a column the
   broker would compute itself, outside the native query, fails the check. A string is a Druid
   expression (``docs/querying/math-expr.md``) run as a scan's virtual column over the case's
   datasource (``foo`` for SQL without FROM, limited to the expected row count); a dict is a
   whole native query whose result columns (a scan's ``columns``; else its dimensions,
   aggregators and post-aggregators, in spec order) are, in order, the SQL's.
   ``NoNative("why")`` has no native check (a subquery, a refusal).
3. **duckdb**: where DuckDB has the function, ``duckdb`` (``SAME``: the case's SQL text, or a
   DuckDB SQL text) run over the same rows (``fixtures.duckdb_tables``) answers ``expected``.

Values are compared after normalising: TIMESTAMPs as ISO text with milliseconds (``Z``),
BOOLEANs as ``true``/``false``, numbers with a relative tolerance of 1e-12 (Java's and C's libm
may differ in the last bit), lists (multi-value strings) element by element.
"""

from __future__ import annotations

import importlib
import json
import math
import pkgutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from common.query.sql.syntax import DIALECT

ETERNITY = "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"


@dataclass(frozen=True)
class Page:
    """A page of Druid's documentation (path under ``docs/``, with an anchor for a section)."""

    doc: str
    title: str


@dataclass(frozen=True)
class Refused:
    """The SQL must answer 400 naming ``name`` (a function or clause kdruid does not build)."""

    name: str


class _Derive:
    def __repr__(self) -> str:
        return "DERIVE"


class _Same:
    def __repr__(self) -> str:
        return "SAME"


DERIVE = _Derive()
SAME = _Same()


@dataclass(frozen=True)
class NoNative:
    """No native check for this case, and why (e.g. the SQL has no native equivalent)."""

    why: str


Rows = list[list[Any]]


@dataclass(frozen=True)
class Case:
    """One documented example: ``fn`` is the function or operator as the page names it."""

    fn: str
    sql: str
    expected: Rows | Refused
    native: _Derive | str | dict[str, Any] | NoNative = DERIVE
    duckdb: _Same | str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def scalar(fn: str, expr: str, value: Any, **kw: Any) -> Case:
    """``SELECT <expr>`` answering one row of one value."""
    return Case(fn, f"SELECT {expr}", [[value]], **kw)


def column(fn: str, expr: str, table: str, values: list[Any], **kw: Any) -> Case:
    """``SELECT <expr> FROM <table>``: one value per fixture row, in ``__time`` order."""
    return Case(fn, f"SELECT {expr} FROM {table}", [[v] for v in values], **kw)


def refused(fn: str, sql: str, name: str | None = None) -> Case:
    """A function kdruid does not build: the SQL answers a 400 naming it."""
    return Case(fn, sql, Refused(name or fn), native=NoNative("refused"))


# ---- the case tables


@dataclass(frozen=True)
class PageCases:
    key: str  # the module's name without ``cases_``
    page: Page
    cases: list[Case]


def pages() -> list[PageCases]:
    """Every ``cases_*.py`` module of this package, by module name."""
    here = Path(__file__).parent
    out = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("cases_"):
            continue
        mod = importlib.import_module(f"{__package__}.{info.name}")
        out.append(PageCases(info.name.removeprefix("cases_"), mod.PAGE, list(mod.CASES)))
    return out


def all_cases() -> list[tuple[str, Case]]:
    """``(test id, case)`` for every case of every page."""
    out = []
    for p in pages():
        seen: dict[str, int] = {}
        for c in p.cases:
            n = seen[c.fn] = seen.get(c.fn, 0) + 1
            out.append((f"{p.key}:{c.fn}:{n}", c))
    return out


# ---- normalising answers


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def from_native(value: Any, sql_type: str) -> Any:
    """A native result value as the SQL answer shows it, given the SQL column type."""
    if value is None:
        return None
    if sql_type == "VARCHAR" and isinstance(value, list):
        # a multi-value string row: Druid's SqlResults writes the list as JSON text ("[]" for
        # an expression's empty array; a row with no value comes back null, not as a list)
        if len(value) == 1:
            return value[0]
        return json.dumps(value, separators=(",", ":"))
    if sql_type == "BIGINT" and isinstance(value, float):
        return int(value)  # e.g. AVG of a BIGINT: a double quotient, truncated by SqlResults
    if sql_type == "TIMESTAMP" and isinstance(value, int | float):
        return _iso(int(value))
    if sql_type == "BOOLEAN" and isinstance(value, int | float | str):
        return str(value).lower() not in ("0", "false", "0.0")
    if sql_type in ("DOUBLE", "FLOAT", "REAL", "DECIMAL") and isinstance(value, int):
        return float(value)  # e.g. a rounded sketch estimate: a long natively, DOUBLE in SQL
    return value


def from_duckdb(value: Any) -> Any:
    if isinstance(value, datetime):
        v = value if value.tzinfo else value.replace(tzinfo=UTC)
        return _iso(int(v.timestamp() * 1000))
    if isinstance(value, date):
        midnight = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return _iso(int(midnight.timestamp() * 1000))
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [from_duckdb(v) for v in value]
    return value


def same(a: Any, b: Any, strict: bool = True) -> bool:
    """Equal values; ``strict``: a BIGINT (int) is not a DOUBLE (float) even when equal."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if strict and type(a) is not type(b):
            return False
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, strict) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) is type(b)


def same_rows(a: Rows, b: Rows, strict: bool = True) -> bool:
    return len(a) == len(b) and all(same(x, y, strict) for x, y in zip(a, b, strict=True))


# ---- native queries


def table_of(sql: str) -> str | None:
    """The datasource a case's SQL reads (None without FROM)."""
    tree = sqlglot.parse_one(sql, dialect=DIALECT)
    from_ = tree.args.get("from") or tree.args.get("from_")
    if from_ is None:
        return None
    t = from_.this
    return t.name if isinstance(t, exp.Table) else None


def expression_scan(case: Case, expr: str, sql_type: str) -> dict[str, Any]:
    """A scan of one expression virtual column: the native form of a one-column case."""
    table = table_of(case.sql)
    if table is not None and " WHERE " in case.sql.upper():
        raise AssertionError(f"{case.fn}: a native expression needs SQL without WHERE")
    out = {"TIMESTAMP": "LONG", "BOOLEAN": "LONG", "BIGINT": "LONG", "VARCHAR": "STRING"}
    native: dict[str, Any] = {
        "queryType": "scan",
        "dataSource": table or "foo",
        "intervals": [ETERNITY],
        "virtualColumns": [
            {
                "type": "expression",
                "name": "v0",
                "expression": expr,
                "outputType": out.get(sql_type, sql_type),
            }
        ],
        "columns": ["v0"],
        "resultFormat": "compactedList",
    }
    if table is None and isinstance(case.expected, list):
        native["limit"] = len(case.expected)
    return native


def native_rows(query: dict[str, Any], result: list[dict[str, Any]]) -> tuple[list[str], Rows]:
    """(column names, rows) of a native query's result, whatever its type."""
    qt = query["queryType"]
    if qt == "scan":
        rows: Rows = []
        names: list[str] = list(query.get("columns") or [])
        for batch in result:
            names = batch.get("columns") or names
            for ev in batch["events"]:
                rows.append(list(ev) if isinstance(ev, list) else [ev.get(n) for n in names])
        return names, rows
    if qt == "timeseries":
        dicts = [{"__time": r["timestamp"], **r["result"]} for r in result]
    elif qt == "groupBy":
        dicts = [r.get("event", r) for r in result]
    elif qt == "topN":
        dicts = [d for r in result for d in r["result"]]
    else:
        raise AssertionError(f"cannot read a {qt} result")
    names = _output_names(query)
    return names, [[d.get(n) for n in names] for d in dicts]


def _output_names(query: dict[str, Any]) -> list[str]:
    """A grouped native query's output columns in spec order: dimensions, aggregators, then
    post-aggregators (what a whole native query of a case answers, column by column)."""
    names: list[str] = []
    dims = query.get("dimensions") or ([query["dimension"]] if "dimension" in query else [])
    for d in dims:
        names.append(d if isinstance(d, str) else d.get("outputName") or d["dimension"])
    names += [a["name"] for a in query.get("aggregations") or []]
    names += [p["name"] for p in query.get("postAggregations") or []]
    return names
