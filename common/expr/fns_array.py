"""Row implementations of Druid's array and multi-value string functions.

A scalar given where an array is expected is a one-element array (null stays null), as Druid
treats a single-valued string in a multi-value function. ``mv_*`` names are Druid's multi-value
spellings of the same functions over ``ARRAY<STRING>``.
"""

from __future__ import annotations

import re
from typing import Any

from common.expr.registry import alias, register
from common.expr.values import compare, to_long, to_str


def as_array(v: Any) -> list[Any] | None:
    if v is None:
        return None
    return v if isinstance(v, list) else [v]


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return compare("==", a, b) == 1


def _index_of(arr: list[Any], v: Any) -> int | None:
    return next((i for i, x in enumerate(arr) if _eq(x, v)), None)


def _length(a: list[Any]) -> Any:
    arr = as_array(a[0])
    return None if arr is None else len(arr)


def _at(base: int) -> Any:
    def row(a: list[Any]) -> Any:
        arr, i = as_array(a[0]), to_long(a[1])
        if arr is None or i is None:
            return None
        i -= base
        return arr[i] if 0 <= i < len(arr) else None

    return row


def _index(base: int) -> Any:
    def row(a: list[Any]) -> Any:
        arr = as_array(a[0])
        if arr is None:
            return None
        i = _index_of(arr, a[1])
        return None if i is None else i + base

    return row


def _contains(a: list[Any]) -> Any:
    arr = as_array(a[0])
    if arr is None:
        return None
    want = a[1] if isinstance(a[1], list) else [a[1]]
    return 1 if all(_index_of(arr, w) is not None for w in want) else 0


def _overlap(a: list[Any]) -> Any:
    x, y = as_array(a[0]), as_array(a[1])
    if x is None or y is None:
        return None
    return 1 if any(_index_of(y, v) is not None for v in x) else 0


def _scalar_in(a: list[Any]) -> Any:
    if a[0] is None:
        return None
    arr = as_array(a[1])
    return None if arr is None else (1 if _index_of(arr, a[0]) is not None else 0)


def _array(a: list[Any]) -> Any:
    return list(a)


def _prepend(a: list[Any]) -> Any:
    arr = as_array(a[1])  # a null array stays null, as Druid's ArrayScalarFunction
    return None if arr is None else [a[0], *arr]


def _append(a: list[Any]) -> Any:
    arr = as_array(a[0])
    return None if arr is None else [*arr, a[1]]


def _concat(a: list[Any]) -> Any:
    x, y = as_array(a[0]), as_array(a[1])
    if x is None or y is None:
        return None
    return [*x, *y]


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if not any(_eq(v, o) for o in out):
            out.append(v)
    return sorted(out, key=lambda v: (v is not None, v))


def _set_add(a: list[Any]) -> Any:
    arr = as_array(a[0]) or []
    return _unique([*arr, a[1]])


def _set_add_all(a: list[Any]) -> Any:
    return _unique([*(as_array(a[0]) or []), *(as_array(a[1]) or [])])


def _slice(a: list[Any]) -> Any:
    arr, start = as_array(a[0]), to_long(a[1])
    if arr is None or start is None:
        return None
    end = len(arr) if len(a) < 3 or a[2] is None else to_long(a[2])
    if end is None or start < 0 or start > len(arr) or end < start:
        return None
    # Druid's Arrays.copyOfRange: past the array's end the slice is padded with nulls
    return arr[start:end] + [None] * max(0, end - max(len(arr), start))


def _to_string(a: list[Any]) -> Any:
    arr, sep = as_array(a[0]), to_str(a[1])
    if arr is None or sep is None:
        return None
    return sep.join("null" if v is None else (to_str(v) or "") for v in arr)


def _string_to_array(a: list[Any]) -> Any:
    s, sep = to_str(a[0]), to_str(a[1])
    if s is None:
        return None
    return java_split(s, sep or "")


def java_split(s: str, regex: str) -> list[str]:
    """Java's ``String.split(regex)``, as Druid's ``string_to_array`` calls it: no match gives
    the whole string, a zero-width match at the start adds no leading empty string, trailing
    empty strings are dropped, and groups in the pattern do not add parts."""
    parts: list[str] = []
    start = 0
    for m in re.finditer(regex, s):
        if m.end() == 0:
            continue
        parts.append(s[start : m.start()])
        start = m.end()
    if not parts:
        return [s]
    parts.append(s[start:])
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _mv_to_array(a: list[Any]) -> Any:
    arr = as_array(a[0])
    return None if arr is None else [to_str(v) for v in arr]


def _array_to_mv(a: list[Any]) -> Any:
    arr = as_array(a[0])
    return None if arr is None else [to_str(v) for v in arr]


# ``array_args``: the array inputs, as Druid's ``getArrayInputs`` (-1: every argument); the other
# arguments are scalars, so a multi-value column there is implicitly mapped.
ALL = (-1,)
FIRST = (0,)
register("array", 0, None, _array, arrays=True, array_args=())
# Druid's explicit conversions between multi-value strings and ARRAY<STRING>: the values stay,
# as strings; only the SQL type (VARCHAR vs ARRAY) differs, which the SQL planner tracks.
register("mv_to_array", 1, 1, _mv_to_array, out="ARRAY<STRING>", arrays=True, array_args=FIRST)
register("array_to_mv", 1, 1, _array_to_mv, out="ARRAY<STRING>", arrays=True, array_args=FIRST)
register("array_length", 1, 1, _length, out="LONG", arrays=True, array_args=FIRST)
register("array_offset", 2, 2, _at(0), arrays=True, array_args=FIRST)
register("array_ordinal", 2, 2, _at(1), arrays=True, array_args=FIRST)
register("array_contains", 2, 2, _contains, out="LONG", arrays=True, array_args=ALL)
register("array_overlap", 2, 2, _overlap, out="LONG", arrays=True, array_args=ALL)
register("scalar_in_array", 2, 2, _scalar_in, out="LONG", arrays=True, array_args=(1,))
register("array_offset_of", 2, 2, _index(0), out="LONG", arrays=True, array_args=FIRST)
register("array_ordinal_of", 2, 2, _index(1), out="LONG", arrays=True, array_args=FIRST)
register("array_prepend", 2, 2, _prepend, arrays=True, array_args=(1,))
register("array_append", 2, 2, _append, arrays=True, array_args=FIRST)
register("array_concat", 2, 2, _concat, arrays=True, array_args=ALL)
register("array_set_add", 2, 2, _set_add, arrays=True, array_args=FIRST)
register("array_set_add_all", 2, 2, _set_add_all, arrays=True, array_args=ALL)
register("array_slice", 2, 3, _slice, arrays=True, array_args=FIRST)
register("array_to_string", 2, 2, _to_string, out="STRING", arrays=True, array_args=FIRST)
register("string_to_array", 2, 2, _string_to_array, out="ARRAY<STRING>", arrays=True, array_args=())
for _mv, _arr in {
    "mv_length": "array_length",
    "mv_offset": "array_offset",
    "mv_ordinal": "array_ordinal",
    "mv_contains": "array_contains",
    "mv_overlap": "array_overlap",
    "mv_offset_of": "array_offset_of",
    "mv_ordinal_of": "array_ordinal_of",
    "mv_prepend": "array_prepend",
    "mv_append": "array_append",
    "mv_concat": "array_concat",
    "mv_slice": "array_slice",
    "mv_to_string": "array_to_string",
    "string_to_mv": "string_to_array",
}.items():
    alias(_mv, _arr)
