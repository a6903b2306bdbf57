"""SQL ARRAY and multi-value string functions -> Druid expressions (pure), and their evaluation
at the broker.

As Druid's ``ArrayOperatorConversions`` / ``MultiValueStringOperatorConversions``: every
``ARRAY_*`` / ``MV_*`` call becomes the Druid expression function of the same meaning
(``array_length``, ``array_offset``, ``array_contains``, ``array_append``, ``mv_to_array``...),
which ``common.expr`` implements once for segments and the broker alike. Types follow Druid's
SQL types: an ``ARRAY_*`` function that builds an array is ``ARRAY<elem>`` (the element type of
its array argument; a multi-value string column is ``ARRAY<STRING>`` there), the ``MV_*`` ones
keep ``VARCHAR`` (a multi-value string), ``ARRAY[...]`` takes its elements' common type.

``MV_FILTER_ONLY``/``MV_FILTER_NONE`` (a literal array), ``MV_FILTER_REGEX`` and
``MV_FILTER_PREFIX`` (a literal pattern/prefix) of a column (or of ``LOOKUP(column, 'name')``)
are Druid's filtered virtual columns (``mv-filtered``, ``mv-regex-filtered``,
``mv-prefix-filtered``, as its ``MultiValueStringOperatorConversions`` plans them) when a native
query holds them; of any other expression (or at the broker) they are Druid's lambda expressions
``filter((x) -> array_contains(arr, x), expr)``, ``filter((x) -> regexp_like(x, 'p'), expr)``
and ``filter((x) -> substring(x, 0, n) == 'p', expr)``.

At the broker (select lists over aggregated rows, subqueries, SELECT without FROM) an array
call is translated the same way over the Arrow columns' types and evaluated by
``common.expr``'s vectorised evaluator. SQL ARRAY values travel at the broker as Arrow
``large_list`` and multi-value strings as ``list<string>``, so the result writer can tell an
ARRAY (stringified per ``sqlStringifyArrays``) from a multi-value VARCHAR.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from common.query.sql.druidexpr_time import quote_string
from common.query.sql.functions import (
    TS,
    Unsupported,
    evaluate,
    is_constant,
    known_lookup,
    lookup_args,
)

if TYPE_CHECKING:
    from common.query.sql.druidexpr import Translator

ARRAY_ELEMENT = {"ARRAY<STRING>": "STRING", "ARRAY<LONG>": "LONG", "ARRAY<DOUBLE>": "DOUBLE"}
_ARROW_ELEMENT = {"STRING": pa.string(), "LONG": pa.int64(), "DOUBLE": pa.float64()}

# sqlglot parses some of Druid's array functions into typed nodes: back to (NAME, arguments).
_TYPED: dict[type[exp.Expression], Callable[[exp.Expression], tuple[str, list[Any]]]] = {
    exp.ArraySize: lambda n: ("ARRAY_LENGTH", [n.this]),
    exp.ArrayContains: lambda n: ("ARRAY_CONTAINS", [n.this, n.expression]),
    exp.ArrayPrepend: lambda n: ("ARRAY_PREPEND", [n.this, n.expression]),
    exp.ArrayAppend: lambda n: ("ARRAY_APPEND", [n.this, n.expression]),
    exp.ArrayConcat: lambda n: ("ARRAY_CONCAT", [n.this, *n.expressions]),
    exp.ArraySlice: lambda n: (
        "ARRAY_SLICE",
        [n.this, n.args.get("start"), *([n.args["end"]] if n.args.get("end") else [])],
    ),
    exp.ArrayToString: lambda n: ("ARRAY_TO_STRING", [n.this, n.expression]),
    exp.StringToArray: lambda n: ("STRING_TO_ARRAY", [n.this, n.expression]),
}

# NAME: (Druid function, argument count range, result rule). Rules: a SQL type, "elem" (the
# element type of the first array argument), "array" (an array of that element type) or "mv"
# (a multi-value VARCHAR).
_CALLS: dict[str, tuple[str, tuple[int, int], str]] = {
    "ARRAY_LENGTH": ("array_length", (1, 1), "LONG"),
    "ARRAY_OFFSET": ("array_offset", (2, 2), "elem"),
    "ARRAY_ORDINAL": ("array_ordinal", (2, 2), "elem"),
    "ARRAY_CONTAINS": ("array_contains", (2, 2), "BOOLEAN"),
    "ARRAY_OVERLAP": ("array_overlap", (2, 2), "BOOLEAN"),
    "SCALAR_IN_ARRAY": ("scalar_in_array", (2, 2), "BOOLEAN"),
    "ARRAY_OFFSET_OF": ("array_offset_of", (2, 2), "LONG"),
    "ARRAY_ORDINAL_OF": ("array_ordinal_of", (2, 2), "LONG"),
    "ARRAY_PREPEND": ("array_prepend", (2, 2), "array"),
    "ARRAY_APPEND": ("array_append", (2, 2), "array"),
    "ARRAY_CONCAT": ("array_concat", (2, 2), "array"),
    "ARRAY_SLICE": ("array_slice", (2, 3), "array"),
    "ARRAY_TO_STRING": ("array_to_string", (2, 2), "STRING"),
    "STRING_TO_ARRAY": ("string_to_array", (2, 2), "ARRAY<STRING>"),
    "ARRAY_TO_MV": ("array_to_mv", (1, 1), "mv"),
    "MV_TO_ARRAY": ("mv_to_array", (1, 1), "ARRAY<STRING>"),
    "MV_LENGTH": ("array_length", (1, 1), "LONG"),
    "MV_OFFSET": ("array_offset", (2, 2), "STRING"),
    "MV_ORDINAL": ("array_ordinal", (2, 2), "STRING"),
    "MV_CONTAINS": ("array_contains", (2, 2), "BOOLEAN"),
    "MV_OVERLAP": ("array_overlap", (2, 2), "BOOLEAN"),
    "MV_OFFSET_OF": ("array_offset_of", (2, 2), "LONG"),
    "MV_ORDINAL_OF": ("array_ordinal_of", (2, 2), "LONG"),
    "MV_PREPEND": ("array_prepend", (2, 2), "mv"),
    "MV_APPEND": ("array_append", (2, 2), "mv"),
    "MV_CONCAT": ("array_concat", (2, 2), "mv"),
    "MV_SLICE": ("array_slice", (2, 3), "mv"),
    "MV_TO_STRING": ("array_to_string", (2, 2), "STRING"),
    "STRING_TO_MV": ("string_to_array", (2, 2), "mv"),
}
# Where the array argument is (the others are scalars); ARRAY_PREPEND/MV_PREPEND take it second.
_ARRAY_ARG = {"ARRAY_PREPEND": 1, "MV_PREPEND": 1, "SCALAR_IN_ARRAY": 1}
FILTERS = {"MV_FILTER_ONLY", "MV_FILTER_NONE", "MV_FILTER_REGEX", "MV_FILTER_PREFIX"}


def call_of(node: exp.Expression) -> tuple[str, list[exp.Expression]] | None:
    """(Druid SQL function name, arguments) when ``node`` is an array/multi-value call."""
    typed = _TYPED.get(type(node))
    if typed is not None:
        return typed(node)
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        if name in _CALLS or name in FILTERS:
            return name, list(node.expressions)
    return None


def is_array_node(node: exp.Expression) -> bool:
    return isinstance(node, exp.Array) or call_of(node) is not None


def element_of(t: str) -> str:
    """The element type an argument of type ``t`` has as an array (a scalar: itself)."""
    if t in ARRAY_ELEMENT:
        return ARRAY_ELEMENT[t]
    if t in ("LONG", "BOOLEAN", "TIMESTAMP"):
        return "LONG"
    if t == "DOUBLE":
        return "DOUBLE"
    return "STRING"


def translate_call(tr: Translator, name: str, args: list[exp.Expression]) -> tuple[str, str]:
    if name in FILTERS:
        return _translate_filter(tr, name, args)
    fn, (lo, hi), rule = _CALLS[name]
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise Unsupported(f"{name} takes {want} arguments, got {len(args)}")
    done = [tr.translate(a) for a in args]
    array_type = done[_ARRAY_ARG.get(name, 0)][1]
    elem = element_of(array_type)
    for (_, t), a in zip(done, args, strict=True):
        if t.startswith("ARRAY") and t not in ARRAY_ELEMENT:
            raise Unsupported(f"Nested arrays are not supported: [{a.sql()}]")
    text = f"{fn}({','.join(t for t, _ in done)})"
    if rule == "elem":
        return text, elem
    if rule == "array":
        return text, f"ARRAY<{elem}>"
    if rule == "mv":
        return text, "STRING"
    return text, rule


def _translate_filter(tr: Translator, name: str, args: list[exp.Expression]) -> tuple[str, str]:
    """The MV_FILTER_* functions: a filtered virtual column of a column, else ``filter(...)``."""
    shape = (
        "array"
        if name in ("MV_FILTER_ONLY", "MV_FILTER_NONE")
        else ("pattern" if name == "MV_FILTER_REGEX" else "prefix")
    )
    if len(args) != 2:
        raise Unsupported(
            f"Invalid number of arguments to function '{name}'; takes (expr, {shape})"
        )
    text, typ = tr.translate(args[0])
    if typ in ARRAY_ELEMENT and shape == "array":
        raise Unsupported(
            f"Cannot apply '{name}' to an ARRAY [{args[0].sql()}]: it takes a multi-value string"
        )
    if typ.startswith("ARRAY") and typ not in ARRAY_ELEMENT:
        raise Unsupported(f"Nested arrays are not supported: [{args[0].sql()}]")
    delegate = _delegate(tr, args[0])
    if delegate is None and typ == "STRING" and _single_string_input(tr, text):
        delegate = {"expression": text}  # lifted into its own virtual column (specialized)
    if shape == "array":
        arr_text, arr_type = tr.translate(args[1])
        if not arr_type.startswith("ARRAY"):
            raise Unsupported(
                f"Cannot apply '{name}' to [{args[1].sql()}]: the second argument must be an array"
            )
        neg = "" if name == "MV_FILTER_ONLY" else "!"
        expression = f"filter((x) -> {neg}array_contains({arr_text}, x), {text})"
        literal = _literal_array(args[1])
        if literal is None:
            return expression, "STRING"
        if not literal:
            if delegate is not None:
                raise Unsupported(f"{name} needs a non-empty array literal: [{args[1].sql()}]")
            return expression, "STRING"
        if delegate is None or tr.special is None:
            return expression, "STRING"
        values: list[str | None] = []
        for v in literal:
            sv = v if v is None or isinstance(v, str) else _as_string(v)
            if sv not in values:
                values.append(sv)
        spec = {
            "type": "mv-filtered",
            "delegate": delegate,
            "values": values,
            "isAllowList": name == "MV_FILTER_ONLY",
        }
        return tr.special(spec), "STRING"
    arg = args[1]
    if not (isinstance(arg, exp.Literal) and arg.is_string):
        raise Unsupported(f"The {name} {shape} must be a string literal: [{arg.sql()}]")
    value = str(arg.this)
    if shape == "pattern":
        expression = f"filter((x) -> regexp_like(x, {quote_string(value)}), {text})"
        special: dict[str, Any] = {"type": "mv-regex-filtered", "pattern": value}
    else:
        cond = f"substring(x, 0, {len(value)}) == {quote_string(value)}"
        expression = f"filter((x) -> {cond}, {text})"
        special = {"type": "mv-prefix-filtered", "prefix": value}
    if delegate is None or tr.special is None:
        return expression, "STRING"
    return tr.special({"type": special.pop("type"), "delegate": delegate, **special}), "STRING"


def _as_string(v: Any) -> str:
    from common.expr.values import to_str

    return to_str(v) or ""


def _literal_array(node: exp.Expression) -> list[Any] | None:
    """The values of a constant array argument (``ARRAY['a', 'b']``), else None."""
    if not (isinstance(node, exp.Array) and is_constant(node)):
        return None
    value = evaluate(node, {}, 1, None)
    py = value.as_py() if isinstance(value, pa.Scalar) else value.to_pylist()[0]
    return list(py) if isinstance(py, list) else None


_ARRAY_OUTPUT = {
    "array",
    "mv_to_array",
    "array_to_mv",
    "array_prepend",
    "array_append",
    "array_concat",
    "array_set_add",
    "array_set_add_all",
    "array_slice",
    "string_to_array",
    "mv_prepend",
    "mv_append",
    "mv_concat",
    "mv_slice",
    "string_to_mv",
}


def _single_string_input(tr: Translator, text: str) -> bool:
    """Druid's ``toFilterDelegate``: an expression of exactly one STRING column that reads no
    array and answers no array can be the delegate of a filtered virtual column."""
    from common.expr import parse_expression
    from common.expr.mvmap import analyze
    from common.expr.parse import Apply, Call

    expr = parse_expression(text)
    found = analyze(expr.node)
    if len(found.free) != 1 or found.arrays or tr.types.get(found.free[0]) != "STRING":
        return False
    root = expr.node
    if isinstance(root, Apply):
        return False
    return not (isinstance(root, Call) and root.name in _ARRAY_OUTPUT)


def _delegate(tr: Translator, node: exp.Expression) -> dict[str, Any] | None:
    """Druid's simple extraction as a delegate dimension spec: a string column, or
    ``LOOKUP(column, 'name'[, 'replace'])`` of one; None for anything else."""
    if isinstance(node, exp.Column):
        name = node.name
        if tr.types.get(name) != "STRING" or name == "__time":
            return None
        return {"type": "default", "dimension": name, "outputName": name, "outputType": "STRING"}
    if isinstance(node, exp.Anonymous) and node.name.upper() == "LOOKUP" and node.expressions:
        col = node.expressions[0]
        if not isinstance(col, exp.Column) or tr.types.get(col.name) != "STRING":
            return None
        lookup, replace = lookup_args(list(node.expressions))
        known_lookup(lookup)
        fn: dict[str, Any] = {
            "type": "registeredLookup",
            "lookup": lookup,
            "retainMissingValue": False,
            "optimize": False,
        }
        if replace is not None:
            fn["replaceMissingValueWith"] = replace
        return {
            "type": "extraction",
            "dimension": col.name,
            "outputName": col.name,
            "outputType": "STRING",
            "extractionFn": fn,
        }
    return None


def translate_array(tr: Translator, node: exp.Array) -> tuple[str, str]:
    """``ARRAY[a, b, ...]``: Druid's ``array(a, b, ...)``, of the elements' common type."""
    done = [tr.translate(a) for a in node.expressions]
    types: list[str] = []
    for (_, t), a in zip(done, node.expressions, strict=True):
        if t.startswith("ARRAY"):
            raise Unsupported(f"Nested arrays are not supported: [{a.sql()}]")
        types.append({"TIMESTAMP": "LONG", "BOOLEAN": "LONG"}.get(t, t))
    real = {t for t in types if t != "NULL"}
    if not real:
        elem = "STRING"
    elif real <= {"LONG"}:
        elem = "LONG"
    elif real <= {"LONG", "DOUBLE"}:
        elem = "DOUBLE"
    elif real == {"STRING"}:
        elem = "STRING"
    else:
        raise Unsupported(f"Mixed element types {sorted(real)} in [{node.sql()}]")
    if not done:
        return f"ARRAY<{elem}>[]", f"ARRAY<{elem}>"
    return f"array({','.join(t for t, _ in done)})", f"ARRAY<{elem}>"


# ---- at the broker


def arrow_sql_type(typ: pa.DataType) -> str:
    """The SQL-side type the translator gives a broker column of Arrow type ``typ``."""
    if pa.types.is_large_list(typ):
        return f"ARRAY<{_element_name(typ.value_type)}>"
    if pa.types.is_list(typ):
        return "STRING"  # a multi-value string
    if pa.types.is_timestamp(typ):
        return "TIMESTAMP"
    if pa.types.is_boolean(typ):
        return "BOOLEAN"
    if pa.types.is_integer(typ):
        return "LONG"
    if pa.types.is_floating(typ):
        return "DOUBLE"
    if pa.types.is_null(typ):
        return "NULL"
    return "STRING"


def _element_name(typ: pa.DataType) -> str:
    if pa.types.is_integer(typ):
        return "LONG"
    if pa.types.is_floating(typ):
        return "DOUBLE"
    return "STRING"


def sql_array_type(t: str) -> pa.DataType:
    """The broker's Arrow type of SQL type ``ARRAY<elem>``."""
    return pa.large_list(_ARROW_ELEMENT[ARRAY_ELEMENT[t]])


def evaluate_at_broker(
    node: exp.Expression, columns: Mapping[str, Any], n: int, now_ms: int | None
) -> Any:
    """An array/multi-value expression over broker-side columns, by its Druid translation."""
    from common.expr import parse_expression
    from common.query.sql.druidexpr import Translator

    types = {name: arrow_sql_type(col.type) for name, col in columns.items()}
    text, typ = Translator(types, now_ms or 0, "UTC").translate(node)
    used = sorted({c.name for c in node.find_all(exp.Column)})
    data: dict[str, Any] = {}
    for name in used:
        col = columns[name]
        if isinstance(col, pa.Scalar):
            col = pa.repeat(col, n)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        data[name] = col  # an ARRAY stays a large_list: read whole, never implicitly mapped
    table = pa.table(data) if data else pa.table({"\x00rows": pa.nulls(n)})
    value = parse_expression(text).evaluate_table(table)
    return from_druid(value, typ)


def from_druid(value: Any, typ: str) -> Any:
    """A Druid expression result as the broker holds a value of SQL type ``typ``."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if typ in ARRAY_ELEMENT:
        target = sql_array_type(typ)
        if pa.types.is_null(value.type) or value.null_count == len(value):
            return pa.nulls(len(value), target)
        if not (pa.types.is_list(value.type) or pa.types.is_large_list(value.type)):
            raise Unsupported(f"Expected an array result, got [{value.type}]")
        return value.cast(target)
    if typ == "BOOLEAN":
        return (
            pc.not_equal(value.cast(pa.int64()), 0)
            if not pa.types.is_null(value.type)
            else (pa.nulls(len(value), pa.bool_()))
        )
    if typ == "TIMESTAMP":
        return value.cast(pa.int64()).cast(TS)
    if pa.types.is_null(value.type) and typ in _NULL_TYPES:
        return pa.nulls(len(value), _NULL_TYPES[typ])  # all null: still typed as the SQL says
    return value


_NULL_TYPES = {
    "STRING": pa.string(),
    "LONG": pa.int64(),
    "DOUBLE": pa.float64(),
    "FLOAT": pa.float64(),
}
