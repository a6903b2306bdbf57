"""dataSchema and inputFormat validation: good specs load, bad ones are clear 400s."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import InvalidInput
from common.ingest.spec import parse_data_schema, parse_input_format

HOUR = 3_600_000


def test_full_schema_loads_with_druid_defaults() -> None:
    s = parse_data_schema(
        {
            "dataSource": "wiki",
            "timestampSpec": {"column": "timestamp", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "added"}]},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {
                "segmentGranularity": "hour",
                "queryGranularity": "none",
                "rollup": False,
                "intervals": ["2024-01-01/P1D"],
            },
            "transformSpec": {"filter": None, "transforms": []},
            "unknownProperty": 1,
        }
    )
    assert s.dimensionsSpec.names == ["page", "added"]
    assert s.granularitySpec.segmentGranularity.bucket_start(HOUR + 5) == HOUR
    assert s.granularitySpec.intervals is not None
    assert s.granularitySpec.intervals[0].end - s.granularitySpec.intervals[0].start == 24 * HOUR
    d = parse_data_schema({"dataSource": "x"})
    assert d.timestampSpec.column == "timestamp" and d.timestampSpec.format == "auto"
    assert d.granularitySpec.rollup is True
    assert d.granularitySpec.segmentGranularity.bucket_start(HOUR * 30) == HOUR * 24
    assert d.dimensionsSpec.discovers


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "dataSource: Field required"),
        ({"dataSource": "a/b"}, "cannot contain '/'"),
        ({"dataSource": "x", "timestampSpec": {"format": "yyyy-QQ"}}, "'QQ' is not supported"),
        ({"dataSource": "x", "timestampSpec": {"missingValue": "soon"}}, "missingValue"),
        ({"dataSource": "x", "dimensionsSpec": {"dimensions": ["a", "a"]}}, "duplicate dimension"),
        (
            {"dataSource": "x", "dimensionsSpec": {"dimensions": [{"type": "json", "name": "j"}]}},
            "dimensionsSpec.dimensions.0.type",
        ),
        (
            {
                "dataSource": "x",
                "metricsSpec": [{"type": "tDigestSketch", "name": "u", "fieldName": "u"}],
            },
            "tDigestSketch",
        ),
        (
            {
                "dataSource": "x",
                "metricsSpec": [
                    {"type": "quantilesDoublesSketch", "name": "q", "fieldName": "v", "k": 100}
                ],
            },
            "k must be a power of 2",
        ),
        (
            {
                "dataSource": "x",
                "metricsSpec": [
                    {"type": "HLLSketchBuild", "name": "h", "fieldName": "v", "tgtHllType": "X"}
                ],
            },
            "tgtHllType",
        ),
        (
            {"dataSource": "x", "metricsSpec": [{"type": "longSum", "name": "s"}]},
            "needs a fieldName",
        ),
        (
            {
                "dataSource": "x",
                "dimensionsSpec": {"dimensions": ["a"]},
                "metricsSpec": [{"type": "count", "name": "a"}],
            },
            "both a dimension and a metric",
        ),
        (
            {"dataSource": "x", "granularitySpec": {"queryGranularity": "fortnight"}},
            "Unknown granularity",
        ),
        (
            {"dataSource": "x", "granularitySpec": {"intervals": ["2024-02-01/2024-01-01"]}},
            "intervals",
        ),
        (
            {
                "dataSource": "x",
                "transformSpec": {
                    "transforms": [{"type": "expression", "name": "a", "expression": "eval('x')"}]
                },
            },
            r"Function \[eval\] is not supported",
        ),
        (
            {"dataSource": "x", "transformSpec": {"filter": {"type": "search", "dimension": "a"}}},
            "unsupported filter type 'search'",
        ),
        ({"dataSource": "x", "parser": {"type": "string"}}, "legacy 'parser'"),
    ],
)
def test_bad_schemas_name_the_problem(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        parse_data_schema(spec)
    assert info.value.status_code == 400
    assert str(info.value).startswith("Invalid dataSchema: ")


def test_input_formats() -> None:
    assert parse_input_format({"type": "json"}).type == "json"
    csv = parse_input_format({"type": "csv", "columns": ["a", "b"]})
    assert csv.type == "csv"
    tsv = parse_input_format({"type": "tsv", "findColumnsFromHeader": True})
    assert tsv.type == "tsv"


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ({"type": "avro"}, "does not match any of the expected tags"),
        ({"type": "csv"}, "findColumnsFromHeader"),
        ({"type": "csv", "columns": ["a"], "findColumnsFromHeader": True}, "both"),
        ({"type": "csv", "columns": ["a", "a"]}, "duplicate column"),
        (
            {
                "type": "json",
                "flattenSpec": {"fields": [{"type": "path", "name": "x", "expr": "$..deep"}]},
            },
            "JSONPath",
        ),
        (
            {
                "type": "json",
                "flattenSpec": {"fields": [{"type": "jq", "name": "x", "expr": ".a"}]},
            },
            "type",
        ),
    ],
)
def test_bad_input_formats(fmt: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_input_format(fmt)
