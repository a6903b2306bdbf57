"""GroupBy and topN grouping on dictionary codes give the same partial, row for row, as grouping
on the decoded strings; dimensions that do not qualify take the decoding path."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from common.query.engine import groupby, topn
from common.query.engine.base import (
    aggregate,
    bucket_column,
    data_intervals,
    effective_intervals,
    select_rows,
)
from common.query.engine.dims import coded_keyed_table, key_outputs, keyed_table
from common.query.models import GroupByQuery, TopNQuery, parse_query
from common.segments.intervals import Interval

SEGMENT = Interval.parse("2024-01-01/2024-01-03")
AGGS: list[dict[str, Any]] = [
    {"type": "count", "name": "n"},
    {"type": "longSum", "name": "added", "fieldName": "added"},
    {"type": "doubleMax", "name": "maxDelta", "fieldName": "delta"},
    {"type": "cardinality", "name": "pages", "fields": ["page"]},
    {"type": "longSum", "name": "pageAsNumber", "fieldName": "page"},
    {
        "type": "filtered",
        "filter": {"type": "selector", "dimension": "country", "value": "FR"},
        "aggregator": {"type": "count", "name": "fr"},
    },
]


def dict_column(codes: Any, values: list[str | None], chunk: int = 700) -> pa.ChunkedArray:
    dictionary = pa.array(values, pa.string())
    chunks = [
        pa.DictionaryArray.from_arrays(pa.array(codes[i : i + chunk], pa.int32()), dictionary)
        for i in range(0, len(codes), chunk)
    ]
    return pa.chunked_array(chunks)


def make_segment(n: int = 4000, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(SEGMENT.start, SEGMENT.end, n))
    country_codes = rng.integers(0, 3, n).astype(object)
    country_codes[rng.random(n) < 0.1] = None  # null dimension values
    page_codes = rng.integers(0, 30, n)
    return pa.table(
        {
            "__time": pa.array(t, pa.timestamp("ms", tz="UTC")),
            "country": dict_column(list(country_codes), ["US", "FR", ""]),
            "page": dict_column(page_codes, [str(i * 7) for i in range(30)]),
            "added": pa.array(rng.integers(0, 100, n), pa.int64(), mask=rng.random(n) < 0.1),
            "delta": pa.array(rng.normal(0, 1, n)),
        }
    )


def group_by(dimensions: list[Any], granularity: str = "all", **extra: Any) -> GroupByQuery:
    body = {
        "queryType": "groupBy",
        "dataSource": "ds",
        "granularity": granularity,
        "intervals": [str(SEGMENT)],
        "dimensions": dimensions,
        "aggregations": AGGS,
        **extra,
    }
    q = parse_query(orjson.dumps(body))
    assert isinstance(q, GroupByQuery)
    return q


def decoded_partial(q: GroupByQuery, table: pa.Table) -> pa.Table:
    """The partial the decoding path gives."""
    intervals = data_intervals(
        table, q.granularity, effective_intervals(q.intervals.intervals, SEGMENT)
    )
    rows = select_rows(table, intervals, q.filter)
    keyed, keys = keyed_table(rows, bucket_column(rows, q.granularity, intervals), q.dimensions)
    return aggregate(keyed, keys, q.aggregations, outputs=key_outputs(q.dimensions))


def coded_partial(q: GroupByQuery, table: pa.Table) -> pa.Table | None:
    intervals = data_intervals(
        table, q.granularity, effective_intervals(q.intervals.intervals, SEGMENT)
    )
    rows = select_rows(table, intervals, q.filter)
    fast = coded_keyed_table(rows, bucket_column(rows, q.granularity, intervals), q.dimensions)
    if fast is None:
        return None
    keyed, keys, coded = fast
    return aggregate(keyed, keys, q.aggregations, coded)


def by_keys(partial: pa.Table) -> pa.Table:
    """The partial in key order: Acero emits groups in hash order, which differs between integer
    and string keys; merging and finalizing do not depend on it."""
    keys = [n for n in partial.column_names if partial.schema.field(n).type in KEY_TYPES]
    return partial.sort_by([(k, "ascending") for k in keys]).combine_chunks()


KEY_TYPES = (pa.int64(), pa.string())


@pytest.mark.parametrize(
    ("dimensions", "granularity", "extra"),
    [
        (["country", "page"], "all", {}),
        (["page"], "hour", {}),
        (
            [{"type": "default", "dimension": "page", "outputName": "p"}, "country"],
            "day",
            {"filter": {"type": "in", "dimension": "country", "values": ["US", ""]}},
        ),
    ],
)
def test_codes_group_like_strings(dimensions: list[Any], granularity: str, extra: Any) -> None:
    q = group_by(dimensions, granularity, **extra)
    table = make_segment()
    coded = coded_partial(q, table)
    assert coded is not None
    assert by_keys(coded).equals(by_keys(decoded_partial(q, table)))
    assert groupby.run(q, table, SEGMENT).equals(coded)


def test_topn_groups_on_codes() -> None:
    body = {
        "queryType": "topN",
        "dataSource": "ds",
        "granularity": "all",
        "intervals": [str(SEGMENT)],
        "dimension": "page",
        "metric": "added",
        "threshold": 5,
        "aggregations": AGGS,
    }
    q = parse_query(orjson.dumps(body))
    assert isinstance(q, TopNQuery)
    table = make_segment()
    as_group_by = group_by(["page"])
    assert by_keys(topn.run(q, table, SEGMENT)).equals(by_keys(decoded_partial(as_group_by, table)))


def test_duplicate_or_null_dictionary_values_decode_first() -> None:
    table = make_segment()
    codes = np.arange(table.num_rows) % 3
    for values in (["a", "b", "a"], ["a", None, "b"]):
        t = table.set_column(1, "country", dict_column(codes, values))
        q = group_by(["country"])
        assert coded_partial(q, t) is None
        assert by_keys(groupby.run(q, t, SEGMENT)).equals(by_keys(decoded_partial(q, t)))


def test_chunks_with_different_dictionaries_decode_first() -> None:
    table = make_segment(n=1000)
    first = pa.DictionaryArray.from_arrays(pa.array([0] * 500, pa.int32()), pa.array(["x", "y"]))
    second = pa.DictionaryArray.from_arrays(pa.array([0] * 500, pa.int32()), pa.array(["y", "x"]))
    t = table.set_column(1, "country", pa.chunked_array([first, second]))
    q = group_by(["country"])
    assert coded_partial(q, t) is None
    assert groupby.run(q, t, SEGMENT).to_pydict()["country"] == ["x", "y"]


def test_plain_string_and_long_output_decode_first() -> None:
    table = make_segment()
    plain = table.set_column(1, "country", table["country"].cast(pa.string()))
    assert coded_partial(group_by(["country"]), plain) is None
    numeric = group_by([{"type": "default", "dimension": "page", "outputType": "LONG"}])
    assert coded_partial(numeric, table) is None
