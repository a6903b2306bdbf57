"""JSON rows written from columns (``common.jsonrows``) are byte for byte what orjson writes from
the dicts, and a groupBy's ``finalize_json`` is ``dumps(finalize(...))``."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from common.jsonresp import dumps
from common.jsonrows import (
    column_texts,
    objects_json,
    objects_json_arrays,
    text_array,
    value_texts,
)
from common.query import finalize, finalize_json, merge, parse_query, run_segment
from common.query.engine import groupby, scan
from common.query.javatext import java_numbers, result_text_array, result_texts
from common.segments.intervals import Interval

TRICKY = ['a"b', "back\\slash", "new\nline", "tab\t", "\x01ctl", "é ü 日本", "🙂", "", None]


def _dicts_json(names: list[str], cols: list[list[Any]], before: Any, after: bytes) -> bytes:
    """The reference: the dicts, written by orjson, with before/after spliced per row."""
    rows = [dict(zip(names, r, strict=True)) for r in zip(*cols, strict=True)]
    heads = before if isinstance(before, list) else [before] * len(rows)
    parts = [h + orjson.dumps(r) + after for h, r in zip(heads, rows, strict=True)]
    return b"[" + b",".join(parts) + b"]"


@pytest.mark.parametrize(
    ("before", "after"),
    [(b"", b""), (b'{"version":"v1","event":', b"}"), ("per-row", b"}")],
)
def test_objects_match_orjson_of_dicts(before: Any, after: bytes) -> None:
    n = len(TRICKY)
    cols: list[list[Any]] = [
        TRICKY,
        [1, -(2**63), 2**63 - 1, 0, None, 7, 8, 9, 10],
        [0.1, 1e300, -0.0, float("nan"), float("inf"), 1e-7, 2.5, None, 3.0],
        [True, False, None, True, False, True, False, None, True],
        [[1, "x"], [], None, ["é"], [None], [1.5], [2], [3], [4]],
        [{"k": 1}, {}, None, {"a": [1]}, {"b": None}, {"c": "d"}, {}, {}, {}],
    ]
    names = ["s", "long", "double", "bool", "array", "object"]
    heads: Any = (
        [f'{{"t":{i},"event":'.encode() for i in range(n)] if before == "per-row" else before
    )
    texts = [value_texts(c) for c in cols]
    assert objects_json(names, texts, n, heads, after) == _dicts_json(names, cols, heads, after)


@pytest.mark.parametrize(
    "col",
    [
        pa.array(TRICKY),
        pa.array([w for w in TRICKY if w is not None]),
        pa.array(['","', '"', "\\", '\\"', '\\","', ",", "null,null", None, "x"]),
        pa.chunked_array([pa.array(["a", None]), pa.array([None, "b\n"])]),
        pa.array(TRICKY, pa.large_string()),
        pa.array([None, None], pa.string()),
        pa.array([1, -(2**63), 2**63 - 1, None], pa.int64()),
        pa.array([0.1, 1e300, -0.0, float("nan"), float("-inf"), 5e-324, None]),
        pa.array([1.5, None], pa.float32()),
        pa.array([True, None, False]),
        pa.nulls(3),
        pa.array([b"\x00\xff", None, b""]),
        pa.array([[1, 2], None, [], [None]], pa.list_(pa.int64())),
        pa.array([{"a": 1, "b": "x"}, None]),
        pa.array(["a", "b", "a"]).dictionary_encode(),
        pa.array([], pa.string()),
    ],
)
def test_column_texts_are_each_values_text(col: Any) -> None:
    values = col.to_pylist()
    if pa.types.is_binary(col.type):
        values = [None if v is None else base64.b64encode(v).decode() for v in values]
    assert column_texts(col) == value_texts(values)


@pytest.mark.parametrize(
    "values",
    [
        [1, "a", None],
        [True, 1, 2.5, None, -0.0, float("nan")],
        ["x", None, None, 'y","z'],
        [None, None],
        [orjson.Fragment(b"1.0E5"), None, orjson.Fragment(b'"NaN"')],
        [[1, ","], {"a": ","}, ","],
        [],
    ],
)
def test_value_texts_are_orjsons_of_each(values: list[Any]) -> None:
    assert value_texts(values) == [orjson.dumps(v) for v in values]


def test_no_rows_and_no_columns() -> None:
    assert objects_json(["a"], [[]], 0, b"x") == b"[]" == orjson.dumps([])
    assert objects_json([], [], 2) == orjson.dumps([{}, {}])


def test_a_repeated_name_is_written_each_time() -> None:
    assert objects_json(["a", "a"], [[b"1"], [b"2"]], 1) == b'[{"a":1,"a":2}]'


def test_a_column_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError):
        objects_json(["a", "b"], [[b"1", b"2"], [b"3"]], 2)


def test_values_orjson_needs_options_for() -> None:
    # numpy scalars and non-string keys fail plain orjson.dumps; the options write them
    values = [np.int64(3), {1: "one"}, np.float64(0.5), "plain"]
    assert value_texts(values) == [b"3", b'{"1":"one"}', b"0.5", b'"plain"']


# ---- groupBy: finalize_json is dumps(finalize(...))

T0 = Interval.parse("2024-03-08/2024-03-09").start
DAY = Interval(T0, T0 + 86_400_000)


def _segment(n: int = 400) -> pa.Table:
    rng = np.random.default_rng(11)
    words = [w for w in TRICKY if w is not None]
    return pa.table(
        {
            "__time": pa.array(np.sort(rng.integers(T0, DAY.end, n)), pa.timestamp("ms")),
            "word": pa.array([words[i % len(words)] if i % 13 else None for i in range(n)]),
            "country": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, 3, n, dtype=np.int32)), pa.array(["US", "FR", "日本"])
            ),
            "added": pa.array(rng.integers(-100, 100, n), pa.int64()),
            "delta": pa.array(rng.normal(0, 10, n)),
            "user": pa.array([f"u{i % 37}" for i in range(n)]),
        }
    )


AGGS: list[dict[str, Any]] = [
    {"type": "count", "name": "n"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
    {"type": "stringLast", "name": "last", "fieldName": "word"},
    {"type": "thetaSketch", "name": "users", "fieldName": "user", "shouldFinalize": False},
    {"type": "thetaSketch", "name": "distinct", "fieldName": "user"},
]
POST = [
    {
        "type": "arithmetic",
        "name": "ratio",
        "fn": "/",
        "fields": [
            {"type": "fieldAccess", "fieldName": "delta"},
            {"type": "constant", "value": 0},
        ],
    }
]


@pytest.mark.parametrize(
    "spec",
    [
        {"granularity": "all", "dimensions": ["word", "country"]},
        {"granularity": "hour", "dimensions": ["country"], "postAggregations": POST},
        {
            "granularity": {"type": "period", "period": "PT6H", "timeZone": "America/New_York"},
            "dimensions": [
                {"type": "default", "dimension": "added", "outputName": "a", "outputType": "LONG"}
            ],
        },
        {
            "granularity": "all",
            "dimensions": ["word"],
            "having": {"type": "greaterThan", "aggregation": "n", "value": 20},
            "limitSpec": {"type": "default", "limit": 3, "columns": ["added"]},
        },
        {"granularity": "all", "dimensions": ["word"], "filter": {"type": "false"}},
        {"granularity": "all", "dimensions": [], "filter": {"type": "false"}},
        {"granularity": "all", "dimensions": ["word", "country"], "subtotalsSpec": [["word"], []]},
    ],
)
@pytest.mark.parametrize("arrow_rows", [0, 10**9], ids=["arrow", "lists"])
def test_groupby_finalize_json_is_dumps_of_finalize(
    spec: dict[str, Any], arrow_rows: int, monkeypatch: Any
) -> None:
    """Both writers: Arrow's (from ``ARROW_ROWS`` rows on) and Python's lists."""
    monkeypatch.setattr(groupby, "ARROW_ROWS", arrow_rows)
    query = parse_query(
        {
            "queryType": "groupBy",
            "dataSource": "t",
            "intervals": [str(DAY)],
            "aggregations": AGGS,
            **spec,
        }
    )
    seg = _segment()
    halves = [seg.slice(0, 200), seg.slice(200)]
    partial = merge(query, [run_segment(query, h, interval=DAY, segment_id="s") for h in halves])
    want = dumps(java_numbers(finalize(query, partial)))
    assert finalize_json(query, partial) == want
    # the comparison is not between two empty answers (but for the false filter's)
    rows = len(orjson.loads(want))
    assert rows == 0 if spec.get("filter") and spec["dimensions"] else rows > 0


# ---- scan: finalize_json is dumps(finalize(...))


def _scan_segments() -> list[pa.Table]:
    seg = _segment(90)
    extra = seg.append_column("blob", pa.array([bytes([i % 7, 255]) for i in range(90)]))
    tags = [["a", 'b"'], None, [], ["x"], ["y", None]]
    extra = extra.append_column("tags", pa.array([tags[i % 5] for i in range(90)]))
    return [extra.slice(0, 50), extra.slice(50)]


@pytest.mark.parametrize(
    "spec",
    [
        {"columns": ["__time", "word", "country", "added", "delta", "blob"]},
        {"columns": ["word", "delta"], "resultFormat": "compactedList", "batchSize": 7},
        {"columns": ["added", "word"], "offset": 45, "limit": 20, "batchSize": 3},
        {"columns": ["word"], "offset": 200},
        {"columns": ["word"], "filter": {"type": "false"}},
        {},  # no columns: each segment answers its own
        {"columns": ["tags", "word"]},  # a multi-value column: through finalize
        {
            "columns": ["mv"],
            "virtualColumns": [
                {
                    "type": "expression",
                    "name": "mv",
                    "expression": "string_to_array(word, 'é')",
                    "outputType": "ARRAY<STRING>",
                }
            ],
        },
    ],
)
@pytest.mark.parametrize("arrow_rows", [0, 10**9], ids=["arrow", "lists"])
def test_scan_finalize_json_is_dumps_of_finalize(
    spec: dict[str, Any], arrow_rows: int, monkeypatch: Any
) -> None:
    monkeypatch.setattr(scan, "ARROW_ROWS", arrow_rows)
    query = parse_query({"queryType": "scan", "dataSource": "t", "intervals": [str(DAY)], **spec})
    partials = [
        run_segment(query, s, interval=DAY, segment_id=f"seg{i}")
        for i, s in enumerate(_scan_segments())
    ]
    partial = merge(query, partials)
    want = dumps(java_numbers(finalize(query, partial)))
    assert finalize_json(query, partial) == want
    rows = sum(len(b["events"]) for b in orjson.loads(want))
    assert rows == 0 if "filter" in spec or spec.get("offset") == 200 else rows > 0


def _odd_doubles() -> list[Any]:
    return [0.0, -0.0, 1e-5, 1e20, 2.0**53, 2.0**53 + 2, 12345678.0, -9.5e7, 0.001, 9999999.5]


ARROW_COLUMNS: list[Any] = [
    pa.array(TRICKY),
    pa.array(["plain", "é ü 日本", "🙂", "", None, "a b", "x", "y", "z"]),
    pa.array(["a", "b", "c", "d", "e", "f", "g", "h", "i"]).slice(0, 9),
    pa.array(["skip", "a", "b", "c", "d", "e", "f", "g", "h", "i", "tail"]).slice(1, 9),
    pa.array([None] * 9, pa.string()),
    pa.array(TRICKY, pa.large_string()),
    pa.DictionaryArray.from_arrays(
        pa.array([0, 1, None, 2, 0, 1, 2, 2, 0], pa.int32()), pa.array(["x", "y\n", "z"])
    ),
    pa.DictionaryArray.from_arrays(
        pa.array([0, 1, None, 2, 0, 1, 2, 2, 0], pa.int32()), pa.array(["x", None, "é"])
    ),
    pa.chunked_array([pa.array(["a", None, "c"]), pa.array(["d", "e", "f", "g", "h", "i"])]),
    pa.array([1, -(2**63), 2**63 - 1, 0, None, 7, 8, 9, 10]),
    pa.array([1, 2, 3, 4, 5, 6, 7, 8, 2**64 - 1], pa.uint64()),
    pa.array([-128, 127, None, 0, 1, 2, 3, 4, 5], pa.int8()),
    pa.array([True, False, None, True, False, True, False, None, True]),
    pa.array([0.1, 1e300, -0.0, float("nan"), float("inf"), 1e-7, 2.5, None, 3.0]),
    pa.array([float("-inf"), *_odd_doubles()[:8]]),
    pa.array(_odd_doubles()[1:], pa.float32()),
    pa.array([b"\x00\x01", None, b"", b"xyz", b"a", b"b", b"c", b"d", b"e"], pa.binary()),
    pa.array([[1], [], None, [2, 3], [4], [5], [6], [7], [8]]),
]


@pytest.mark.parametrize("col", ARROW_COLUMNS, ids=lambda c: str(c.type))
def test_text_arrays_are_the_texts(col: Any) -> None:
    """The Arrow-built texts of a result column are ``result_texts``'s, value for value."""
    texts = result_text_array(col)
    assert texts.type == pa.binary() and texts.null_count == 0
    assert texts.to_pylist() == result_texts(col)


@pytest.mark.parametrize(
    ("before", "after"), [(b"", b""), (b'{"version":"v1","event":', b"}"), ("per-row", b"}")]
)
def test_objects_from_arrays_are_objects_json(before: Any, after: bytes) -> None:
    n = 9
    names = [f"c{i}" for i in range(len(ARROW_COLUMNS))]
    heads: Any = (
        [f'{{"t":{i},"event":'.encode() for i in range(n)] if before == "per-row" else before
    )
    arrow_heads = pa.array(heads, pa.binary()) if isinstance(heads, list) else heads
    want = objects_json(names, [result_texts(c) for c in ARROW_COLUMNS], n, heads, after)
    got = objects_json_arrays(
        names, [result_text_array(c) for c in ARROW_COLUMNS], arrow_heads, after
    )
    assert got == want
    one = objects_json_arrays(["x"], [result_text_array(ARROW_COLUMNS[0]).slice(3, 1)])
    assert one == objects_json(["x"], [result_texts(ARROW_COLUMNS[0])[3:4]], 1)
    assert objects_json_arrays(["x"], [pa.array([], pa.binary())]) == b"[]"


def test_a_string_needing_escapes_takes_orjson() -> None:
    """Arrow quotes a string as it is; one holding a quote, a backslash or a control character
    is escaped by orjson instead (the whole column), whichever row it is in."""
    for bad in ['q"', "b\\", "c\x1f", "\n"]:
        col = pa.array(["ok"] * 1000 + [bad] + ["ok"] * 10)
        assert text_array(col) is None
        assert result_text_array(col).to_pylist() == column_texts(col)
    assert text_array(pa.array(["ok", "\x7f", "\u2028"])) is not None  # orjson keeps these
