"""The numpy fast paths give exactly what the general paths give: dense topN/groupBy partials
(``engine.dense``), numeric expressions (``expr.fastnum``), dictionary filters looked up by code
(``columns.eval_predicate``) and the join on a dictionary column's codes (``query.join``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from common.expr import fastnum, parse_expression
from common.expr.vector import _evaluate
from common.query import join as join_mod
from common.query.columns import _eval_chunk, _null_result, eval_predicate
from common.query.datasource import JoinDataSource
from common.query.engine import batches, dense, groupby, run_segment, topn
from common.query.engine.sorted_time import remember_sorted
from common.query.filters import filter_mask
from common.query.models import parse_query
from common.segments.intervals import Interval

DAY = 86_400_000
T0 = Interval.parse("2024-03-08/2024-03-09").start
SEGMENT = Interval(T0, T0 + 2 * DAY)


def segment(n: int = 4000, seed: int = 3, chunk: int = 333) -> pa.Table:
    rng = np.random.default_rng(seed)
    pages = pa.array([f"p{i}" for i in range(40)])
    codes = rng.integers(0, 40, n).astype(np.int32)
    table = pa.table(
        {
            "__time": pa.array(
                np.sort(rng.integers(T0, SEGMENT.end, n)), pa.timestamp("ms", tz="UTC")
            ),
            "country": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, 3, n).astype(np.int32), mask=rng.random(n) < 0.1),
                pa.array(["US", "FR", "DE"]),
            ),
            "page": pa.DictionaryArray.from_arrays(pa.array(codes), pages),
            "added": pa.array(rng.integers(-1000, 1000, n), pa.int64()),
            "holes": pa.array(rng.integers(-5, 5, n), pa.int64(), mask=rng.random(n) < 0.3),
            "delta": pa.array(rng.normal(0, 1e6, n) * rng.choice([1.0, 1e-9, 1e9], n)),
            "bin": pa.array(rng.integers(-3, 7, n), pa.int64(), mask=rng.random(n) < 0.05),
        }
    )
    # NaN in every row of country DE (a group of only NaN and nulls), in some rows elsewhere
    country = table.column("country").to_pylist()
    nan = [float("nan") if c == "DE" or i % 7 == 0 else float(i) for i, c in enumerate(country)]
    table = table.append_column("nan", pa.array(nan, pa.float64(), mask=rng.random(n) < 0.2))
    # several record batches sharing each dimension's dictionary, as a memory-mapped segment
    return pa.Table.from_batches(table.to_batches(max_chunksize=chunk))


def _filtered(flt: dict[str, Any], inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": "filtered", "filter": flt, "aggregator": inner}


AGGS: list[dict[str, Any]] = [
    {"type": "count", "name": "n"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
    {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
    {"type": "longMin", "name": "minHoles", "fieldName": "holes"},
    {"type": "longMax", "name": "maxAdded", "fieldName": "added"},
    {"type": "doubleMin", "name": "minDelta", "fieldName": "delta"},
    {"type": "longSum", "name": "holes", "fieldName": "holes"},
    {"type": "doubleSum", "name": "expr", "expression": "added * 2 + delta"},
    _filtered(
        {"type": "range", "column": "added", "matchValueType": "LONG", "lower": 500},
        {"type": "count", "name": "big"},
    ),
    _filtered(
        {"type": "in", "dimension": "page", "values": ["p1", "p2"]},
        {"type": "doubleSum", "name": "p12", "fieldName": "delta"},
    ),
    _filtered(  # an expression input computed at the selected rows (engine.lazy), filtered
        {"type": "range", "column": "added", "matchValueType": "LONG", "lower": 0},
        {"type": "doubleSum", "name": "fexpr", "expression": "delta * 2 - added"},
    ),
    {"type": "doubleMin", "name": "minNan", "fieldName": "nan"},
    {"type": "doubleMax", "name": "maxNan", "fieldName": "nan"},
    {"type": "doubleSum", "name": "sumNan", "fieldName": "nan"},
    _filtered(
        {"type": "range", "column": "delta", "matchValueType": "DOUBLE", "upper": 0.0},
        {"type": "longMax", "name": "negHoles", "fieldName": "holes"},
    ),
    _filtered(
        {"type": "not", "field": {"type": "selector", "dimension": "country", "value": "US"}},
        _filtered(
            {"type": "bound", "dimension": "holes", "lower": "0", "ordering": "numeric"},
            {"type": "doubleMax", "name": "nested", "fieldName": "nan"},
        ),
    ),
]

QUERIES: list[dict[str, Any]] = [
    {"queryType": "groupBy", "granularity": "all", "dimensions": ["country", "page"]},
    {"queryType": "groupBy", "granularity": "hour", "dimensions": ["country"]},
    {
        "queryType": "groupBy",
        "granularity": "all",
        "dimensions": [{"type": "default", "dimension": "bin", "outputType": "LONG"}],
        "filter": {"type": "selector", "dimension": "country", "value": "FR"},
    },
    {
        "queryType": "groupBy",
        "granularity": "day",
        "virtualColumns": [
            {"type": "expression", "name": "b2", "expression": "added / 100", "outputType": "LONG"}
        ],
        "dimensions": [{"type": "default", "dimension": "b2", "outputType": "LONG"}, "page"],
        "filter": {"type": "expression", "expression": "delta > 0 || added < -500"},
    },
    {
        "queryType": "topN",
        "granularity": "all",
        "dimension": "page",
        "metric": "added",
        "threshold": 5,
    },
    {
        "queryType": "topN",
        "granularity": "hour",
        "dimension": "country",
        "metric": "n",
        "threshold": 2,
        "filter": {"type": "bound", "dimension": "added", "lower": "-10", "ordering": "numeric"},
    },
]


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


PART = Interval(T0 + 5 * 3_600_000 + 17, T0 + DAY + 7 * 3_600_000)


@pytest.mark.parametrize("batch_rows", [1 << 16, 100])
@pytest.mark.parametrize("known", [False, True], ids=["unchecked", "known-sorted"])
@pytest.mark.parametrize("interval", [SEGMENT, PART], ids=["whole", "part"])
@pytest.mark.parametrize("spec", QUERIES, ids=lambda q: f"{q['queryType']}-{q['granularity']}")
def test_dense_partial_equals_the_general_one(
    spec: dict[str, Any], interval: Interval, known: bool, batch_rows: int, monkeypatch: Any
) -> None:
    body = {"dataSource": "t", "intervals": [str(interval)], "aggregations": AGGS, **spec}
    query = parse_query(body)
    table = segment()
    if known:  # a whole segment in one interval is then read as it is (dense._selected)
        remember_sorted(table)
    monkeypatch.setattr(batches, "BATCH_ROWS", batch_rows)  # batches cut inside chunks too
    assert dense.run_dense is not None
    fast = run_segment(query, table, interval=SEGMENT, segment_id="s")
    for module in (topn, groupby):
        monkeypatch.setattr(module, "run_dense", lambda *a, **k: None)
    slow = run_segment(query, table, interval=SEGMENT, segment_id="s")
    keys = [n for n in slow.column_names if n not in {a["name"] for a in _names(AGGS)}]
    assert fast.schema == slow.schema
    fast, slow = _sorted(fast, keys), _sorted(slow, keys)
    for name in slow.column_names:  # floats bit for bit, NaN where NaN
        assert _same(fast.column(name).to_pylist(), slow.column(name).to_pylist()), name


def _names(aggs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_names([a["aggregator"]])[0] if "aggregator" in a else a for a in aggs]


def test_dense_declines_what_it_cannot_do() -> None:
    table = segment()
    query = parse_query(
        {
            "queryType": "groupBy",
            "dataSource": "t",
            "intervals": [str(SEGMENT)],
            "granularity": "all",
            "dimensions": ["page"],
            "aggregations": [{"type": "HLLSketchBuild", "name": "u", "fieldName": "page"}],
        }
    )
    assert isinstance(query, groupby.GroupByQuery)
    args = (table, query.granularity, [SEGMENT], None)
    assert dense.run_dense(*args, query.dimensions, query.aggregations) is None  # sketch
    plain = query.model_copy(update={"dimensions": [parse_dim("delta", "LONG")]})
    assert dense.run_dense(*args, plain.dimensions, []) is None  # a double column as LONG
    unsorted = table.take(pa.array(np.arange(table.num_rows)[::-1]))
    assert dense.run_dense(unsorted, *args[1:], query.dimensions, []) is None
    from common.query.specs import DimensionSpec

    mapped = DimensionSpec.model_validate(
        {"type": "lookup", "dimension": "page", "lookup": {"type": "map", "map": {"a": "b"}}}
    )
    assert dense.run_dense(*args, [mapped], []) is None  # values mapped, not the stored codes


def parse_dim(name: str, typ: str) -> Any:
    from common.query.specs import DimensionSpec

    return DimensionSpec.model_validate({"dimension": name, "outputType": typ})


NUMERIC = pa.table(
    {
        "a": pa.array([-7, 7, 0, -1, 5, 2**40, -(2**40), 13, -13, 100], pa.int64()),
        "b": pa.array([2, -2, 3, 1, -5, 4, 4, 0, 7, -3], pa.int64()),
        "x": pa.array([0.5, -0.0, float("nan"), float("inf"), -1.5, 2.0, 1e300, -3.0, 0.0, 7.25]),
        "t": pa.array(np.arange(10) * 1000 + T0, pa.timestamp("ms", tz="UTC")),
        "s": pa.array(np.arange(10), pa.int32()),
    }
)


@pytest.mark.parametrize(
    "text",
    [
        "a + b * 3 - s",
        "a * a",  # wraps, as Arrow's unchecked multiply
        "a / 3",
        "a / -3",
        "a % 3",
        "a % -4",
        "a / 2.0 + x",
        "x / 0.0",
        "x % 2",
        "a > b && x < 1.5",
        "!(a >= 0) || x == 0",
        "-a + -x",
        "if(a > 0, b, s * 2)",
        "if(x > 0, a, 1.5)",
        "(a / 100) * 100 + if(x > 0, 1, 0)",
        "t / 1000 - 1",
        "a == b",
        "x != x",
    ],
)
def test_fastnum_equals_the_general_evaluator(text: str) -> None:
    node = parse_expression(text).node
    for table in (NUMERIC, pa.Table.from_batches(NUMERIC.to_batches(max_chunksize=3))):
        fast = fastnum.evaluate(node, table)
        assert fast is not None, text
        slow = _evaluate(node, table.combine_chunks(), False)
        assert fast.type == slow.type, text
        assert _same(fast.to_pylist(), slow.to_pylist()), text


def _same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        x == y or (x != x and y != y) for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize(
    "text",
    ["a / b", "a % b", "a / 0", "a ^ 2", "concat(a, 'x')", "1 + 2", "nope + 1", "a + null"],
)
def test_fastnum_declines_what_could_be_null_or_is_not_numeric(text: str) -> None:
    assert fastnum.evaluate(parse_expression(text).node, NUMERIC) is None
    with_nulls = NUMERIC.set_column(0, "a", pa.array([None] + [1] * 9, pa.int64()))
    assert fastnum.evaluate(parse_expression("a + 1").node, with_nulls) is None


FILTERS: list[dict[str, Any]] = [
    {"type": "selector", "dimension": "country", "value": "FR"},
    {"type": "selector", "dimension": "country", "value": None},
    {"type": "in", "dimension": "country", "values": ["US", None]},
    {"type": "in", "dimension": "country", "values": ["US", "DE"]},
    {"type": "bound", "dimension": "country", "lower": "E", "upper": "G"},
    {"type": "not", "field": {"type": "selector", "dimension": "country", "value": "US"}},
    {"type": "range", "column": "holes", "matchValueType": "LONG", "lower": 0, "upperOpen": True},
    {"type": "range", "column": "added", "matchValueType": "DOUBLE", "upper": 10.5},
    {"type": "like", "dimension": "page", "pattern": "p1%"},
]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: f["type"])
def test_filters_by_dictionary_code_equal_per_chunk_evaluation(
    flt: dict[str, Any], monkeypatch: Any
) -> None:
    from pydantic import TypeAdapter

    from common.query import columns
    from common.query.filters import Filter

    model = TypeAdapter(Filter).validate_python(flt)
    table = segment()
    got = filter_mask(model, table).to_pylist()
    assert filter_mask(model, table.combine_chunks()).to_pylist() == got
    # the reference: the dictionary evaluated chunk by chunk (the path before the shared lookup)
    monkeypatch.setattr(columns, "_shared_dictionary", lambda col: None)
    assert filter_mask(model, table).to_pylist() == got


NESTED: list[dict[str, Any]] = [
    {"type": "and", "fields": [FILTERS[0], FILTERS[6]]},
    {"type": "or", "fields": [FILTERS[2], {"type": "not", "field": FILTERS[6]}]},
    {"type": "not", "field": {"type": "and", "fields": [FILTERS[3], FILTERS[7]]}},
    {"type": "not", "field": {"type": "or", "fields": [FILTERS[0], FILTERS[4], FILTERS[8]]}},
    {"type": "and", "fields": [{"type": "expression", "expression": "added > 0"}, FILTERS[5]]},
    {"type": "or", "fields": [{"type": "expression", "expression": "holes > 0"}, FILTERS[1]]},
]


@pytest.mark.parametrize("flt", FILTERS + NESTED, ids=lambda f: f["type"])
def test_numpy_masks_equal_arrow_masks(flt: dict[str, Any]) -> None:
    from pydantic import TypeAdapter

    from common.query.filters import Filter, mask_numpy

    model = TypeAdapter(Filter).validate_python(flt)
    table = segment()
    assert mask_numpy(model, table).tolist() == filter_mask(model, table).to_pylist()


def test_eval_predicate_keeps_unknowns() -> None:
    col = segment().column("country")
    pred = lambda arr: pc.equal(arr, "FR")  # noqa: E731
    null_result = _null_result(pred)
    expected = pa.chunked_array([_eval_chunk(c, pred, null_result) for c in col.chunks])
    assert eval_predicate(col, pred).to_pylist() == expected.to_pylist()
    assert None in expected.to_pylist()


def _join(kind: str, right_rows: list[list[Any]], condition: str = 'page == "j.k"') -> Any:
    return JoinDataSource.model_validate(
        {
            "type": "join",
            "left": "t",
            "right": {
                "type": "inline",
                "columnNames": ["k", "label", "num"],
                "columnTypes": ["STRING", "STRING", "LONG"],
                "rows": right_rows,
            },
            "rightPrefix": "j.",
            "condition": condition,
            "joinType": kind,
        }
    )


@pytest.mark.parametrize("kind", ["LEFT", "INNER"])
def test_join_on_codes_equals_the_general_join(kind: str, monkeypatch: Any) -> None:
    rows = [[f"p{i}", f"L{i % 3}" if i % 5 else None, i] for i in range(0, 60, 2)]
    rows.append([None, "nullkey", -1])
    table = segment().append_column("j.label", pa.array(["shadowed"] * 4000))
    spec = _join(kind, rows)
    assert join_mod._join_on_codes(spec, table, spec.right.table()) is not None  # type: ignore[union-attr]
    fast = join_mod.apply_join(spec, table)
    monkeypatch.setattr(join_mod, "_join_on_codes", lambda *a: None)
    slow = join_mod.apply_join(spec, table)
    assert fast.column_names == slow.column_names
    for name in fast.column_names:
        assert _same(fast.column(name).to_pylist(), slow.column(name).to_pylist()), name


def test_join_on_codes_declines_duplicate_keys_and_expressions() -> None:
    table = segment()
    dup = _join("LEFT", [["p1", "a", 1], ["p1", "b", 2]])
    assert join_mod._join_on_codes(dup, table, dup.right.table()) is None  # type: ignore[union-attr]
    expr = _join("LEFT", [["P1", "a", 1]], 'upper(page) == "j.k"')
    assert join_mod._join_on_codes(expr, table, expr.right.table()) is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bound", [500.0, 500.5, -0.5, 2.5, -3.0, 2.0**53 - 1, 2.0**53, 2.0**60, float("inf"), 1e300]
)
@pytest.mark.parametrize("strict", [False, True])
def test_integer_range_compares_as_in_doubles(bound: float, strict: bool) -> None:
    from common.query.filters import _range_into

    big = 1 << 53
    near = [big - 2, big - 1, big, big + 1, big + 2, 1 << 60, (1 << 60) + 1]
    values = np.array(
        [-5, -3, -1, 0, 1, 2, 3, 499, 500, 501, *near, (1 << 63) - 1, -(1 << 63)], dtype=np.int64
    )
    doubles = values.astype(np.float64)  # the reference: Arrow compares numbers as doubles
    out = np.empty(len(values), dtype=bool)
    for lo, hi in ((bound, None), (None, bound), (bound - 1, bound)):
        _range_into(values, lo, hi, strict, strict, out)
        want = np.ones(len(values), dtype=bool)
        if lo is not None:
            want &= doubles > lo if strict else doubles >= lo
        if hi is not None:
            want &= doubles < hi if strict else doubles <= hi
        assert out.tolist() == want.tolist(), (lo, hi, strict)


BIG = 1 << 53
LONGS = [BIG - 1, BIG, BIG + 1, BIG + 2, (1 << 62) + 1, (1 << 63) - 1, -(1 << 63), -BIG - 1, 0, 7]


@pytest.mark.parametrize("nulls", [False, True], ids=["null-free", "nullable"])
@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("as_text", [False, True], ids=["number", "text"])
def test_long_range_with_an_integer_bound_is_exact_beyond_2_53(
    nulls: bool, strict: bool, as_text: bool
) -> None:
    # Druid's bound filter compares a LONG column with a bound that parses as a long in longs:
    # BIG + 1 > BIG although both are the same double. Its range filter makes the bound a
    # double first (RangeFilter's long predicate: (long) Math.ceil(lowerEval.asDouble())...),
    # so there BIG + 1 is BIG.
    from pydantic import TypeAdapter

    from common.query.filters import Filter

    values: list[int | None] = [*LONGS, None] if nulls else list(LONGS)
    table = pa.table({"n": pa.array(values, pa.int64())})
    for lo, hi in ((BIG, None), (None, BIG + 1), (BIG + 1, (1 << 63) - 1), (-(1 << 63), -BIG)):

        def keeps(v: int | None, lo: int | None, hi: int | None) -> bool:
            return (
                v is not None
                and (lo is None or (v > lo if strict else v >= lo))
                and (hi is None or (v < hi if strict else v <= hi))
            )

        def as_double(b: int | None) -> int | None:  # (long) of the nearest double, saturating
            return None if b is None else min(int(float(b)), (1 << 63) - 1)

        want = [keeps(v, lo, hi) for v in values]
        want_range = [keeps(v, as_double(lo), as_double(hi)) for v in values]
        bound = {"type": "bound", "dimension": "n", "ordering": "numeric"}
        rng = {"type": "range", "column": "n", "matchValueType": "LONG"}
        for spec in (
            {**bound, "lower": lo, "upper": hi, "lowerStrict": strict, "upperStrict": strict},
            {**rng, "lower": lo, "upper": hi, "lowerOpen": strict, "upperOpen": strict},
        ):
            spec = {
                k: (str(v) if as_text and k in ("lower", "upper") else v) for k, v in spec.items()
            }
            spec = {k: v for k, v in spec.items() if v is not None and v != "None"}
            model = TypeAdapter(Filter).validate_python(spec)
            expected = want if spec["type"] == "bound" else want_range
            assert filter_mask(model, table).to_pylist() == expected, (spec, nulls)


@pytest.mark.parametrize("nulls", [False, True], ids=["null-free", "nullable"])
@pytest.mark.parametrize("as_text", [False, True], ids=["number", "text"])
def test_long_equality_and_in_with_integers_are_exact_beyond_2_53(
    nulls: bool, as_text: bool
) -> None:
    from pydantic import TypeAdapter

    from common.query.filters import Filter

    values: list[int | None] = [*LONGS, None] if nulls else list(LONGS)
    table = pa.table({"n": pa.array(values, pa.int64())})

    def given(v: int) -> int | str:
        return str(v) if as_text else v

    def mask(spec: dict[str, Any]) -> list[bool]:
        return filter_mask(TypeAdapter(Filter).validate_python(spec), table).to_pylist()

    for target in (BIG + 1, (1 << 63) - 1, -BIG - 1, 7):
        want = [v == target for v in values]
        assert mask({"type": "selector", "dimension": "n", "value": given(target)}) == want
        equals = {"type": "equals", "column": "n", "matchValueType": "LONG"}
        assert mask({**equals, "matchValue": given(target)}) == want
    picks = [BIG + 1, (1 << 62) + 1]
    want = [v in picks for v in values]
    assert mask({"type": "in", "dimension": "n", "values": [given(p) for p in picks]}) == want
    # a value given as a double still matches as a double (1.0 matches 1, 7.5 nothing)
    assert mask({"type": "in", "dimension": "n", "values": [7.0, 7.5]}) == [v == 7 for v in values]
    # a double bound compares a long through its nearest double, never refusing a big long
    bound = {"type": "bound", "dimension": "n", "ordering": "numeric", "lower": "1.5"}
    assert mask(bound) == [v is not None and v > 1.5 for v in values]


# (lower, upper, lowerStrict, upperStrict) -> the longs a numeric bound keeps, read off Druid's
# BoundDimFilter.createLongPredicate: an integer text compares as a long; a decimal is rounded
# toward the inside (lower: ceiling, or floor when strict; upper: floor, or ceiling when strict)
# and compared with the same strictness; beyond the longs a positive lower / negative upper bound
# matches nothing, the other way round no bound; an unparseable bound sorts before every number.
BOUND_CASES: list[tuple[Any, Any, bool, bool, Any]] = [
    ("2.5", None, False, False, lambda v: v >= 3),
    ("2.5", None, True, False, lambda v: v > 2),
    (None, "2.5", False, False, lambda v: v <= 2),
    (None, "2.5", False, True, lambda v: v < 3),
    ("-2.5", "2.5", True, True, lambda v: -2 <= v <= 2),
    (2.5, None, False, False, lambda v: v >= 3),  # a JSON number is its text
    ("9007199254740992.5", None, False, False, lambda v: v >= BIG + 1),  # decimals exact
    ("1e19", None, False, False, lambda v: False),  # above every long: nothing
    ("-1e19", None, False, False, lambda v: True),  # below every long: no bound
    (None, "1e19", False, False, lambda v: True),
    (None, "-1e19", False, False, lambda v: False),
    ("9223372036854775808", None, False, False, lambda v: False),  # Long.MAX + 1
    ("abc", None, False, False, lambda v: True),  # unparseable lower: before every number
    (None, "abc", False, False, lambda v: False),  # unparseable upper: nothing
    ("abc", "5", False, False, lambda v: v <= 5),
    (" 5", None, False, False, lambda v: True),  # neither a long nor a BigDecimal in Druid
    ("+5", None, False, False, lambda v: v >= 5),
    ("1E1", None, True, False, lambda v: v > 10),
]


@pytest.mark.parametrize("nulls", [False, True], ids=["null-free", "nullable"])
@pytest.mark.parametrize(("lower", "upper", "ls", "us", "keeps"), BOUND_CASES)
def test_numeric_bound_on_a_long_column_is_druids_long_predicate(
    nulls: bool, lower: Any, upper: Any, ls: bool, us: bool, keeps: Any
) -> None:
    from pydantic import TypeAdapter

    from common.query.filters import Filter, mask_numpy

    values: list[int | None] = [*LONGS, -3, 2, 3, 5, 10, 11, *([None] if nulls else [])]
    table = pa.table({"n": pa.array(values, pa.int64())})
    spec = {"type": "bound", "dimension": "n", "ordering": "numeric"}
    spec |= {"lowerStrict": ls, "upperStrict": us}
    if lower is not None:
        spec["lower"] = lower
    if upper is not None:
        spec["upper"] = upper
    model = TypeAdapter(Filter).validate_python(spec)
    want = [v is not None and bool(keeps(v)) for v in values]
    assert filter_mask(model, table).to_pylist() == want
    assert mask_numpy(model, table).tolist() == want


@pytest.mark.parametrize(
    ("lower", "upper", "lo_open", "up_open", "keeps"),
    [
        (2.5, None, False, False, lambda v: v >= 3),  # closed lower: ceiling
        (2.5, None, True, False, lambda v: v > 2),  # open lower: floor
        (None, 2.5, False, False, lambda v: v <= 2),  # closed upper: floor
        (None, 2.5, False, True, lambda v: v < 3),  # open upper: ceiling
        (1e30, None, False, False, lambda v: v >= (1 << 63) - 1),  # (long) saturates
        (None, -1e30, False, False, lambda v: v <= -(1 << 63)),
    ],
)
def test_double_range_on_a_long_column_rounds_its_bounds_as_druid(
    lower: Any, upper: Any, lo_open: bool, up_open: bool, keeps: Any
) -> None:
    from pydantic import TypeAdapter

    from common.query.filters import Filter, mask_numpy

    values = [*LONGS, -3, 2, 3, None]
    table = pa.table({"n": pa.array(values, pa.int64())})
    spec: dict[str, Any] = {"type": "range", "column": "n", "matchValueType": "DOUBLE"}
    spec |= {"lowerOpen": lo_open, "upperOpen": up_open}
    spec |= {k: v for k, v in (("lower", lower), ("upper", upper)) if v is not None}
    model = TypeAdapter(Filter).validate_python(spec)
    want = [v is not None and bool(keeps(v)) for v in values]
    assert filter_mask(model, table).to_pylist() == want
    assert mask_numpy(model, table.drop_null()).tolist() == [w for w in want[:-1]]


@pytest.mark.parametrize("match", ["LONG", "DOUBLE"])
def test_numeric_range_with_an_unparseable_bound_is_invalid_input(match: str) -> None:
    # RangeFilter's constructor: "lower bound [x] cannot be parsed as specified match value type"
    from pydantic import TypeAdapter, ValidationError

    from common.query.filters import Filter

    spec = {"type": "range", "column": "n", "matchValueType": match, "lower": "abc"}
    with pytest.raises(ValidationError, match=r"lower bound \[abc\] cannot be parsed"):
        TypeAdapter(Filter).validate_python(spec)
