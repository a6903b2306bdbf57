"""SQL text -> a validated sqlglot ``Select``: one statement, one table, ``?`` parameters bound.

Everything the planner cannot read at all is refused here with Druid's 400 ``SQL parse failed``;
what parses but cannot be planned is the planner's ``Plan validation failed``.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from common.errors import PlanValidationError, SqlParseError
from common.query.sql.syntax import DIALECT, Source, check_tokens, parse_error, tokenize
from common.query.sql.syntax import lexical_error as tokenize_error

_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+PLAN\s+(?:WITH\s+\w+\s+)?FOR\s+", re.IGNORECASE)
_SQLGLOT_LOG = logging.getLogger("sqlglot")

#: Druid's SQL parameter types (``SqlParameter``), mapped onto how the literal is written.
_NUMERIC = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "REAL", "DECIMAL"}
_STRING = {"VARCHAR", "CHAR"}


@dataclass(frozen=True)
class Statement:
    select: exp.Expression  # a Select, or a UNION of them (run by ``subquery.Subqueries``)
    explain: bool


#: Statements parsed lately, by SQL text and parameters: a dashboard sends the same few queries
#: again and again, and parsing one (~1-2 ms) costs more than the rest of a small query's
#: planning. Only successful parses are kept; each caller gets its own copy of the tree.
PARSE_CACHE_SIZE = 256


def parse_sql(text: str, parameters: list[dict[str, Any]] | None = None) -> Statement:
    """Parse one SELECT (optionally ``EXPLAIN PLAN FOR``) and bind ``?`` parameters in order."""
    if not isinstance(text, str) or not text.strip():
        raise SqlParseError("Incorrect syntax: the query is empty")
    key = (text, repr(parameters) if parameters else "")  # repr: NaN, 1 and 1.0 stay apart
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
    if cached is None:
        cached = _parse(text, parameters)
        with _CACHE_LOCK:
            _CACHE[key] = cached
            if len(_CACHE) > PARSE_CACHE_SIZE:
                _CACHE.popitem(last=False)
    return Statement(cached.select.copy(), cached.explain)


_CACHE: OrderedDict[tuple[str, str], Statement] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _parse(text: str, parameters: list[dict[str, Any]] | None) -> Statement:
    m = _EXPLAIN.match(text)
    explain = m is not None
    start = m.end() if m else 0
    body = text[start:]
    lead = len(body) - len(body.lstrip())
    body = body.strip().rstrip(";").rstrip()
    src = Source(text, start + lead)
    tokens = tokenize(src, body)
    check_tokens(src, tokens)
    _refuse_json_functions(tokens)
    try:
        level = _SQLGLOT_LOG.level
        _SQLGLOT_LOG.setLevel(logging.ERROR)
        try:
            trees = DIALECT.parser().parse(tokens, body)
        finally:
            _SQLGLOT_LOG.setLevel(level)
    except ParseError as exc:
        raise parse_error(src, exc, tokens) from exc
    except TokenError as exc:
        raise tokenize_error(src, body) from exc
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise SqlParseError("Incorrect syntax: expected exactly one statement")
    tree = trees[0]
    if isinstance(tree, exp.Values):
        tree = exp.select("*").from_(tree)
    if not isinstance(tree, exp.Select | exp.SetOperation):
        kind = type(tree).__name__.upper()
        raise SqlParseError(f"Incorrect syntax: only SELECT statements are supported, got [{kind}]")
    tree = _bind(tree, parameters or [])
    return Statement(_without_positions(_calcite_forms(tree)), explain)


_POSITIONS = frozenset({"line", "col", "start", "end"})


def _without_positions(tree: exp.Expression) -> exp.Expression:
    """``tree`` without the parser's source positions (``meta`` line/col/start/end, read only by
    parse errors) and empty comment lists: every copy of a node deep-copies its ``meta``, and
    planning copies a statement's trees a dozen times (most of its time went there)."""
    for node in tree.walk():
        meta = node._meta
        if meta is not None and meta.keys() <= _POSITIONS:
            node._meta = None
        elif meta is not None:
            for key in _POSITIONS & meta.keys():
                del meta[key]
        if node.comments is not None and not node.comments:
            node.comments = None
    return tree


#: Druid's JSON functions (``querying/sql-json-functions.md``): they read and build
#: ``COMPLEX<json>`` values, and kdruid has no nested columns.
_JSON_FUNCTIONS = frozenset(
    "JSON_KEYS JSON_MERGE JSON_OBJECT JSON_PATHS JSON_QUERY JSON_QUERY_ARRAY JSON_VALUE "
    "PARSE_JSON TRY_PARSE_JSON TO_JSON_STRING".split()
)


def _refuse_json_functions(tokens: list[Any]) -> None:
    """Refused before parsing: ``JSON_VALUE(x, '$.a' RETURNING BIGINT)`` would otherwise fail
    as a syntax error that does not name the function."""
    for tok, nxt in itertools.pairwise(tokens):
        name = tok.text.upper()
        if name in _JSON_FUNCTIONS and nxt.text == "(":
            raise PlanValidationError(
                f"{name} is not supported: kdruid has no nested (COMPLEX<json>) columns"
            )


def _refuse_unbuilt(tree: exp.Expression) -> None:
    """Clauses sqlglot reads but the planner has no plan for: refused, never ignored."""
    for node in tree.walk():
        if isinstance(node, exp.Pivot):
            name = "UNPIVOT" if node.args.get("unpivot") else "PIVOT"
            raise PlanValidationError(f"{name} is not supported")
        if isinstance(node, exp.TableSample):
            raise PlanValidationError("TABLESAMPLE is not supported")
        if isinstance(node, exp.Distinct) and node.args.get("on") is not None:
            raise PlanValidationError("DISTINCT ON is not supported")


#: Functions whose first argument is a time unit keyword (``TIMESTAMPADD(MONTH, 1, t)``).
_UNIT_FIRST = {"TIMESTAMPADD", "TIMESTAMPDIFF"}


def _calcite_forms(tree: exp.Expression) -> exp.Expression:
    """Read what Calcite reads differently from sqlglot: an unquoted ``PI`` is the constant
    (``PI()``), not a column; a time unit argument is a keyword, not a column."""
    _refuse_unbuilt(tree)
    for node in list(tree.walk()):
        if node.args.get("negate"):
            # sqlglot reads ``x NOT LIKE p`` as a LIKE with a ``negate`` flag: make it
            # NOT (x LIKE p) (with its ESCAPE), the form everything downstream reads.
            node.set("negate", None)
            target = node.parent if isinstance(node.parent, exp.Escape) else node
            target.replace(exp.Not(this=target.copy()))
    for node in list(tree.walk()):
        if isinstance(node, exp.Column) and not node.table and node.name.upper() == "PI":
            if not node.this.args.get("quoted"):
                node.replace(exp.Pi())
        elif isinstance(node, exp.Anonymous) and node.name.upper() in _UNIT_FIRST:
            first = node.expressions[0] if node.expressions else None
            if isinstance(first, exp.Column) and not first.table:
                first.replace(exp.Var(this=first.name.upper()))
    return tree


def _bind(tree: exp.Expression, parameters: list[dict[str, Any]]) -> exp.Expression:
    # A depth-first walk meets the holes in the order they are written (LIMIT aside).
    holes = [n for n in tree.walk(bfs=False) if isinstance(n, exp.Placeholder) and n.this is None]
    if not holes:
        return tree
    if len(parameters) < len(holes):
        raise SqlParseError(
            f"Parameter at position [{len(parameters)}] is not bound: "
            f"{len(holes)} '?' for {len(parameters)} parameters"
        )
    for hole, param in zip(holes, parameters, strict=False):
        hole.replace(_literal(param))
    return tree


def _literal(param: Any) -> exp.Expression:
    if not isinstance(param, dict) or "type" not in param:
        raise SqlParseError('A parameter must be {"type": ..., "value": ...}')
    typ = str(param["type"]).upper()
    value = param.get("value")
    if value is None:
        return exp.Null()
    if typ in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise SqlParseError(f"Parameter of type [{typ}] has a non-numeric value [{value}]")
        try:
            num = (
                int(value) if typ in {"BIGINT", "INTEGER", "SMALLINT", "TINYINT"} else float(value)
            )
        except ValueError as exc:
            raise SqlParseError(f"Parameter of type [{typ}] has a bad value [{value}]") from exc
        return exp.Literal.number(num)
    if typ in _STRING:
        return exp.Literal.string(str(value))
    if typ == "BOOLEAN":
        return exp.Boolean(this=bool(value))
    if typ == "TIMESTAMP":
        return exp.Cast(this=exp.Literal.string(str(value)), to=exp.DataType.build("TIMESTAMP"))
    if typ == "DATE":
        return exp.Cast(this=exp.Literal.string(str(value)), to=exp.DataType.build("DATE"))
    raise SqlParseError(f"Unsupported parameter type [{typ}]")
