"""Druid filter JSON compiled to a per-row predicate, for ``transformSpec.filter`` at ingest time.

Rows arrive one Kafka record at a time, so this evaluates a filter against one row mapping (the
event after transforms, with ``__time`` in ms). The query engine filters Arrow tables instead.
Supported types, with Druid's semantics (a multi-value row matches when any value matches; a
null value never matches a comparison): ``selector``, ``equals``, ``in``, ``bound`` (orderings
``lexicographic`` and ``numeric``), ``range``, ``like``, ``regex``, ``null``, ``and``, ``or``,
``not``, ``true``, ``false``, ``expression`` (Druid expressions, ``common.expr``).
``extractionFn`` is not supported and is refused at compile time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from common.expr import ExpressionError, as_bool, compile_expression

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


class FilterError(ValueError):
    """The filter JSON is malformed or uses something not supported."""


def _values(v: Any) -> list[Any]:
    if isinstance(v, list):
        return v if v else [None]
    return [v]


def _as_str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        # A long column and a selector value of "3" should match as in Druid.
        return str(int(v))
    return str(v)


def _as_float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _field(spec: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in spec:
            return spec[n]
    raise FilterError(f"{spec.get('type')} filter needs '{names[0]}': {dict(spec)}")


def _any(column: str, test: Callable[[Any], bool]) -> Predicate:
    def pred(row: Row) -> bool:
        v = row.get(column)
        if isinstance(v, list):
            return any(test(x) for x in (v or [None]))
        return test(v)

    return pred


def _like_regex(pattern: str, escape: str | None) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if escape and c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _bound(spec: Mapping[str, Any], column: str) -> Predicate:
    ordering = spec.get("ordering") or "lexicographic"
    if isinstance(ordering, dict):
        ordering = ordering.get("type", "lexicographic")
    if spec.get("alphaNumeric"):
        ordering = "alphanumeric"
    lower, upper = spec.get("lower"), spec.get("upper")
    lo_strict, up_strict = bool(spec.get("lowerStrict")), bool(spec.get("upperStrict"))
    if ordering == "numeric":
        lo_n = _as_float(lower) if lower is not None else None
        up_n = _as_float(upper) if upper is not None else None
        if (lower is not None and lo_n is None) or (upper is not None and up_n is None):
            raise FilterError(f"bound filter with numeric ordering needs numbers: {dict(spec)}")

        def test_n(v: Any) -> bool:
            x = _as_float(v)
            if x is None:
                return False
            if lo_n is not None and (x <= lo_n if lo_strict else x < lo_n):
                return False
            return not (up_n is not None and (x >= up_n if up_strict else x > up_n))

        return _any(column, test_n)
    if ordering != "lexicographic":
        raise FilterError(f"bound ordering '{ordering}' is not supported (lexicographic, numeric)")
    lo_s, up_s = _as_str(lower), _as_str(upper)

    def test_s(v: Any) -> bool:
        x = _as_str(v)
        if x is None:
            return False
        if lo_s is not None and (x <= lo_s if lo_strict else x < lo_s):
            return False
        return not (up_s is not None and (x >= up_s if up_strict else x > up_s))

    return _any(column, test_s)


def _range(spec: Mapping[str, Any]) -> Predicate:
    column = _field(spec, "column")
    kind = str(spec.get("matchValueType", "STRING")).upper()
    bound = {
        "type": "bound",
        "lower": spec.get("lower"),
        "upper": spec.get("upper"),
        "lowerStrict": spec.get("lowerOpen", False),
        "upperStrict": spec.get("upperOpen", False),
        "ordering": "lexicographic" if kind == "STRING" else "numeric",
    }
    return _bound(bound, column)


def _equals(spec: Mapping[str, Any]) -> Predicate:
    column = _field(spec, "column")
    kind = str(_field(spec, "matchValueType")).upper()
    target = _field(spec, "matchValue")
    if target is None:
        raise FilterError("equals filter needs a non-null matchValue (use the null filter)")
    if kind in ("LONG", "DOUBLE", "FLOAT"):
        num = _as_float(target)
        if num is None:
            raise FilterError(f"equals matchValue {target!r} is not a {kind}")
        return _any(column, lambda v: _as_float(v) == num)
    if kind != "STRING":
        raise FilterError(f"equals matchValueType '{kind}' is not supported")
    text = _as_str(target)
    return _any(column, lambda v: _as_str(v) == text)


def compile_filter(spec: Mapping[str, Any] | None) -> Predicate | None:
    """Compile a Druid filter; ``None`` (no filter) stays ``None`` so callers can skip it."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be a JSON object, got {spec!r}")
    if spec.get("extractionFn") is not None:
        raise FilterError("extractionFn in ingest filters is not supported")
    kind = spec.get("type")
    if kind in ("and", "or"):
        fields = _field(spec, "fields")
        if not isinstance(fields, list) or not fields:
            raise FilterError(f"{kind} filter needs a non-empty 'fields' list")
        preds = [compile_filter(f) for f in fields]
        ps = [p for p in preds if p is not None]
        if kind == "and":
            return lambda row: all(p(row) for p in ps)
        return lambda row: any(p(row) for p in ps)
    if kind == "not":
        inner = compile_filter(_field(spec, "field"))
        if inner is None:
            raise FilterError("not filter needs a 'field'")
        return lambda row: not inner(row)
    if kind == "true":
        return lambda row: True
    if kind == "false":
        return lambda row: False
    if kind == "selector":
        column = _field(spec, "dimension")
        target = _as_str(spec.get("value"))
        if target in (None, ""):
            return _any(column, lambda v: v is None or v == "")
        return _any(column, lambda v: _as_str(v) == target)
    if kind == "equals":
        return _equals(spec)
    if kind == "in":
        column = _field(spec, "dimension")
        values = _field(spec, "values")
        if not isinstance(values, list):
            raise FilterError("in filter needs a 'values' list")
        wanted = {_as_str(v) for v in values}
        with_null = None in wanted or "" in wanted
        return _any(column, lambda v: (v is None and with_null) or _as_str(v) in wanted)
    if kind == "bound":
        return _bound(spec, _field(spec, "dimension"))
    if kind == "range":
        return _range(spec)
    if kind == "like":
        rx = _like_regex(str(_field(spec, "pattern")), spec.get("escape"))
        return _any(
            _field(spec, "dimension"),
            lambda v: v is not None and bool(rx.fullmatch(_as_str(v) or "")),
        )
    if kind == "regex":
        try:
            rx = re.compile(str(_field(spec, "pattern")))
        except re.error as e:
            raise FilterError(f"regex filter pattern is invalid: {e}") from e
        return _any(
            _field(spec, "dimension"), lambda v: v is not None and bool(rx.search(_as_str(v) or ""))
        )
    if kind == "null":
        column = _field(spec, "column")
        return lambda row: row.get(column) is None
    if kind == "expression":
        try:
            compiled = compile_expression(str(_field(spec, "expression")))
        except ExpressionError as e:
            raise FilterError(f"expression filter: {e}") from e
        ev = compiled.evaluate
        return lambda row: as_bool(ev(row))
    raise FilterError(
        f"unsupported filter type {kind!r} (supported: selector, equals, in, bound, range, like, "
        "regex, null, and, or, not, true, false, expression)"
    )
