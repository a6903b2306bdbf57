"""parse_query: accepted Druid spellings, context defaults, and bad queries -> QueryParseError
(400 "Json parse failed") with a message naming the problem."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import QueryParseError
from common.query import parse_query
from common.query.models import ScanQuery, TimeseriesQuery, TopNQuery

OK = {"queryType": "timeseries", "dataSource": "w", "intervals": "2024-01-01/2024-02-01"}


def test_accepted_spellings_and_context_defaults() -> None:
    q = parse_query(
        b'{"queryType":"timeseries","dataSource":{"type":"table","name":"w"},'
        b'"intervals":{"type":"intervals","intervals":["2024-01-01/P1D"]}}'
    )
    assert isinstance(q, TimeseriesQuery) and q.dataSource == "w"
    assert str(q.intervals.intervals[0]) == "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"
    assert q.timeout_ms == 300000 and q.priority == 0 and len(q.query_id) == 36
    assert parse_query(OK).query_id != parse_query(OK).query_id
    q2 = parse_query(
        {
            **OK,
            "context": {
                "queryId": "abc",
                "timeout": "1000",
                "priority": 5,
                "skipEmptyBuckets": "true",
                "custom": 1,
            },
        }
    )
    assert (q2.query_id, q2.timeout_ms, q2.priority) == ("abc", 1000, 5)
    assert q2.context.skipEmptyBuckets is True
    assert q2.to_json()["context"]["custom"] == 1
    t = parse_query(
        {
            **OK,
            "queryType": "topN",
            "dimension": "d",
            "threshold": 5,
            "metric": {"type": "inverted", "metric": {"type": "numeric", "metric": "c"}},
            "aggregations": [{"type": "count", "name": "c"}],
        }
    )
    assert isinstance(t, TopNQuery) and parse_query(t.to_json()) == t
    s = parse_query(
        {
            **OK,
            "queryType": "scan",
            "limit": 9223372036854775807,
            "orderBy": [{"columnName": "__time", "order": "descending"}],
        }
    )
    assert isinstance(s, ScanQuery) and s.limit is None and s.order == "descending"


BAD: list[tuple[Any, str]] = [
    ("{not json", "Malformed JSON"),
    ([1, 2], "must be a JSON object"),
    ({"dataSource": "w"}, "queryType"),
    ({**OK, "queryType": "select"}, "Could not resolve type id 'select'"),
    ({**OK, "intervals": "yesterday"}, "Invalid interval"),
    ({**OK, "intervals": "2024-02-01/2024-01-01"}, "intervals"),
    ({**OK, "intervals": []}, "intervals must not be empty"),
    ({**OK, "intervals": {"type": "weird"}}, "unknown intervals type"),
    ({k: v for k, v in OK.items() if k != "intervals"}, "missing 'intervals'"),
    ({**OK, "dataSource": {"type": "join"}}, "join.left: Field required"),
    ({**OK, "dataSource": {"type": "weird"}}, "Input tag 'weird'"),
    ({**OK, "dataSource": 3}, "dataSource"),
    ({**OK, "granularity": "fortnight"}, "granularity"),
    (
        {**OK, "granularity": {"type": "period", "period": "P1D", "timeZone": "Mars/Base"}},
        "granularity",
    ),
    ({**OK, "aggregations": [{"type": "longSumm", "name": "x", "fieldName": "y"}]}, "longSumm"),
    ({**OK, "aggregations": [{"type": "longSum", "name": "x"}]}, "fieldName"),
    (
        {**OK, "aggregations": [{"type": "count", "name": "x"}, {"type": "count", "name": "x"}]},
        "duplicate output name [x]",
    ),
    (
        {**OK, "aggregations": [{"type": "longSum", "name": "x", "expression": "a+"}]},
        "expression",
    ),
    (
        {**OK, "aggregations": [{"type": "thetaSketch", "name": "x", "expression": "a"}]},
        "aggregator [thetaSketch] does not take an expression",
    ),
    (
        {
            **OK,
            "aggregations": [{"type": "longSum", "name": "x", "fieldName": "a", "expression": "a"}],
        },
        "exactly one of fieldName or expression",
    ),
    ({**OK, "filter": {"type": "search", "dimension": "d"}}, "search"),
    (
        {**OK, "filter": {"type": "bound", "dimension": "d", "ordering": "strlen"}},
        "unsupported ordering",
    ),
    ({**OK, "filter": {"type": "regex", "dimension": "d", "pattern": "("}}, "invalid regex"),
    (
        {
            **OK,
            "filter": {
                "type": "selector",
                "dimension": "d",
                "value": "x",
                "extractionFn": {"type": "javascript", "function": "f"},
            },
        },
        "JavaScript is disabled",
    ),
    ({**OK, "filter": {"type": "and", "fields": []}}, "fields"),
    (
        {
            **OK,
            "postAggregations": [
                {
                    "type": "arithmetic",
                    "name": "p",
                    "fn": "^",
                    "fields": [{"type": "constant", "value": 1}],
                }
            ],
        },
        "fn",
    ),
    ({**OK, "postAggregations": [{"type": "constant", "value": 1}]}, "needs a name"),
    ({**OK, "virtualColumns": [{"type": "expression"}]}, "virtualColumns"),
    (
        {**OK, "virtualColumns": [{"type": "fallback", "name": "v", "columns": ["d"]}]},
        "virtual column type [fallback] is not supported",
    ),
    (
        {**OK, "virtualColumns": [{"type": "expression", "name": "v", "expression": "nope(1)"}]},
        "Function [nope] is not supported",
    ),
    (
        {
            **OK,
            "virtualColumns": [
                {"type": "expression", "name": "a", "expression": "b + 1"},
                {"type": "expression", "name": "b", "expression": "a + 1"},
            ],
        },
        "cycle",
    ),
    (
        {
            **OK,
            "virtualColumns": [
                {"type": "expression", "name": "v", "expression": "1", "outputType": "COMPLEX"}
            ],
        },
        "outputType",
    ),
    ({**OK, "filter": {"type": "expression", "expression": "x >"}}, "expression"),
    ({**OK, "context": {"timeout": -1}}, "timeout"),
    (
        {**OK, "queryType": "topN", "dimension": "d", "threshold": 3, "metric": "nope"},
        "metric[nope]",
    ),
    (
        {
            **OK,
            "queryType": "topN",
            "dimension": "d",
            "metric": "c",
            "aggregations": [{"type": "count", "name": "c"}],
        },
        "threshold",
    ),
    (
        {**OK, "queryType": "groupBy", "dimensions": [{"type": "extraction", "dimension": "d"}]},
        "extraction",
    ),
    (
        {**OK, "queryType": "groupBy", "dimensions": [{"dimension": "d", "outputType": "DATE"}]},
        "outputType",
    ),
    (
        {
            **OK,
            "queryType": "groupBy",
            "dimensions": ["d"],
            "limitSpec": {"type": "default", "columns": ["zzz"]},
        },
        "limitSpec column [zzz]",
    ),
    ({**OK, "queryType": "groupBy", "having": {"type": "weird"}}, "having"),
    ({**OK, "queryType": "scan", "resultFormat": "valueVector"}, "resultFormat"),
    ({**OK, "queryType": "scan", "orderBy": [{"columnName": "page"}]}, "only supported on __time"),
    ({**OK, "queryType": "timeBoundary", "bound": "middle"}, "bound"),
]


@pytest.mark.parametrize(("body", "needle"), BAD, ids=[n for _, n in BAD])
def test_bad_query_raises_query_parse_error(body: Any, needle: str) -> None:
    import orjson

    raw = body if isinstance(body, str) else orjson.dumps(body)
    with pytest.raises(QueryParseError) as info:
        parse_query(raw)
    assert needle in info.value.message
    assert info.value.status_code == 400
    assert info.value.to_druid_json()["error"] == "Json parse failed"
