"""Record bytes -> rows: timestamps, json and csv, transforms, filters, row accounting."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import InputRow, RowParser
from common.ingest.spec import parse_data_schema, parse_input_format
from common.ingest.timestamps import make_timestamp_parser

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("iso", "2024-01-01T00:00:00Z", T0),
        ("iso", "2024-01-01T00:00:00.123Z", T0 + 123),
        ("iso", "2024-01-01T00:00:00.123456789Z", T0 + 123),
        ("iso", "2024-01-01", T0),
        ("iso", "2024-01-01T02:00:00+02:00", T0),
        ("iso", "2024-01-01T01", T0 + 3_600_000),
        ("auto", "2024-01-01T00:00:00Z", T0),
        ("auto", "2024-01-01 00:00:00", T0),
        ("auto", "2024-01-01 01:00:00 Europe/Paris", T0),
        ("auto", str(T0), T0),
        ("auto", T0, T0),
        ("auto", float(T0), T0),
        ("millis", T0, T0),
        ("millis", str(T0), T0),
        ("posix", T0 // 1000, T0),
        ("posix", str(T0 // 1000), T0),
        ("micro", T0 * 1000 + 999, T0),
        ("nano", T0 * 1_000_000 + 5, T0),
        ("ruby", T0 / 1000 + 0.25, T0 + 250),
        ("yyyy-MM-dd HH:mm:ss", "2024-01-01 00:00:07", T0 + 7000),
        ("dd/MMM/yyyy:HH:mm:ss Z", "01/Jan/2024:01:00:00 +0100", T0),
        ("yyyy-MM-dd'T'HH:mm:ss.SSS", "2024-01-01T00:00:00.042", T0 + 42),
        ("MM/dd/yyyy hh:mm a", "01/01/2024 12:00 AM", T0),
    ],
)
def test_timestamp_formats(fmt: str, value: Any, expected: int) -> None:
    assert make_timestamp_parser(fmt)(value) == expected


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("iso", "yesterday"),
        ("iso", "2024-13-01"),
        ("millis", "12abc"),
        ("posix", "1.5e9x"),
        ("auto", "not a date"),
        ("auto", True),
        ("yyyy-MM-dd", "01/01/2024"),
        # out of Druid's instant range, or not finite: never an overflowing int in the index
        ("auto", 1e300),
        ("millis", 1e300),
        ("auto", float("inf")),
        ("ruby", float("inf")),
        ("posix", 10**30),
    ],
)
def test_unparseable_timestamps_raise_value_error(fmt: str, value: Any) -> None:
    with pytest.raises(ValueError):
        make_timestamp_parser(fmt)(value)


def _parser(
    schema: dict[str, Any] | None = None,
    fmt: dict[str, Any] | None = None,
    saved: int = 10,
    max_errors: int = 2**31 - 1,
) -> RowParser:
    base = {
        "dataSource": "wiki",
        "timestampSpec": {"column": "ts", "format": "auto"},
        "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "n"}]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
            {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
        ],
    }
    handler = ParseExceptionHandler(
        RowIngestionMeters(), max_parse_exceptions=max_errors, max_saved_parse_exceptions=saved
    )
    return RowParser(
        parse_data_schema({**base, **(schema or {})}),
        parse_input_format(fmt or {"type": "json"}),
        handler,
    )


def _json(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def _rows(p: RowParser, *records: bytes | None, **kw: Any) -> list[InputRow]:
    return p.parse_many(records, now_ms=5, **kw)


def test_json_object_and_newline_delimited_objects() -> None:
    p = _parser()
    one = _json(ts=T0, page="A", n="7", added=3, delta="1.5", extra="x")
    two = b'{"ts": 1, "page": "B"}\n\n{"ts": 2, "page": "C", "added": 4}\n'
    rows = _rows(p, one, two, None, b"")
    assert [(r.timestamp, r.dims, r.metrics) for r in rows] == [
        (T0, {"page": "A", "n": 7}, (None, 3, 1.5)),
        (1, {"page": "B"}, (None, None, None)),
        (2, {"page": "C"}, (None, 4, None)),
    ]
    assert p.meters.totals() == {
        "processed": 3,
        "processedBytes": len(one) + len(two),
        "processedWithError": 0,
        "thrownAway": 0,
        "unparseable": 0,
    }


def test_malformed_records_are_counted_and_skipped_not_raised() -> None:
    p = _parser()
    rows = _rows(
        p,
        b"{not json",
        b"[1, 2]",
        b'{"ts": 1}\n{broken',
        _json(page="no timestamp"),
        _json(ts="garbage", page="x"),
        _json(ts=T0, page="ok"),
    )
    assert [r.dims for r in rows] == [{"page": "ok"}]
    assert p.meters.unparseable == 5
    assert p.meters.processed == 1
    saved = p.handler.saved()
    assert len(saved) == 5
    assert all(s["errorType"] == "unparseable" for s in saved)
    assert "Timestamp[null] is unparseable" in saved[3]["details"][0]
    assert "Timestamp[garbage] is unparseable" in saved[4]["details"][0]
    assert saved[0]["input"] == "{not json" and saved[0]["timeOfExceptionMillis"] == 5


def test_values_that_do_not_convert_are_processed_with_error() -> None:
    p = _parser()
    rows = _rows(p, _json(ts=T0, page="A", n="seven", added="lots", delta=2))
    assert [(r.dims, r.metrics) for r in rows] == [({"page": "A"}, (None, None, 2.0))]
    assert (p.meters.processed, p.meters.processed_with_error) == (0, 1)
    (report,) = p.handler.saved()
    assert report["errorType"] == "processedWithError"
    assert report["details"] == [
        "could not convert value [seven] to long for dimension [n]",
        "Unable to parse value[lots] for field[added]",
    ]


def test_max_parse_exceptions_stops_the_loop() -> None:
    from common.ingest.meters import MaxParseExceptionsExceeded

    p = _parser(max_errors=1)
    _rows(p, b"{bad")
    with pytest.raises(MaxParseExceptionsExceeded):
        _rows(p, b"{bad again")


def test_missing_value_for_timestamp() -> None:
    p = _parser({"timestampSpec": {"column": "ts", "missingValue": "2024-01-01T00:00:00Z"}})
    (row,) = _rows(p, _json(page="A"))
    assert row.timestamp == T0


def test_multi_value_handling_and_string_conversion() -> None:
    p = _parser(
        {
            "dimensionsSpec": {
                "dimensions": [
                    "sorted",
                    {"name": "as_set", "multiValueHandling": "sorted_set"},
                    {"name": "as_is", "multiValueHandling": "ARRAY"},
                    "one",
                    "empty",
                    "num",
                    "flag",
                ]
            }
        }
    )
    (row,) = _rows(
        p,
        _json(
            ts=1,
            sorted=["b", "a", "b"],
            as_set=["b", "a", "b"],
            as_is=["b", "a"],
            one=["x"],
            empty=[],
            num=1.5,
            flag=True,
        ),
    )
    assert row.dims == {
        "sorted": ["a", "b", "b"],
        "as_set": ["a", "b"],
        "as_is": ["b", "a"],
        "one": "x",
        "num": "1.5",
        "flag": "true",
    }


def test_schemaless_discovery_excludes_time_metric_fields_and_exclusions() -> None:
    p = _parser({"dimensionsSpec": {"dimensions": [], "dimensionExclusions": ["secret"]}})
    (row,) = _rows(
        p, _json(ts=1, page="A", n=3, added=5, delta=1.0, count=9, secret="s", nested={"a": 1})
    )
    assert row.dims == {"page": "A", "n": "3"}
    typed = _parser({"dimensionsSpec": {"useSchemaDiscovery": True}})
    (row,) = _rows(typed, _json(ts=1, page="A", n=3, r=0.5, b=False, tags=["y", "x"]))
    assert row.dims == {"page": "A", "n": 3, "r": 0.5, "b": 0, "tags": ["x", "y"]}


def test_transforms_read_the_input_row_and_can_replace_time() -> None:
    p = _parser(
        {
            "dimensionsSpec": {"dimensions": ["page", "shout", "kind"]},
            "transformSpec": {
                "transforms": [
                    {"type": "expression", "name": "shout", "expression": "upper(page)"},
                    # Reads the original "page", not the transform below.
                    {"type": "expression", "name": "kind", "expression": "concat(page, '!')"},
                    {"type": "expression", "name": "page", "expression": "lower(page)"},
                    {"type": "expression", "name": "__time", "expression": "__time + 1000"},
                ]
            },
        }
    )
    (row,) = _rows(p, _json(ts=T0, page="Main"))
    assert row.dims == {"page": "main", "shout": "MAIN", "kind": "Main!"}
    assert row.timestamp == T0 + 1000


def test_filter_and_time_windows_throw_rows_away() -> None:
    p = _parser(
        {
            "transformSpec": {
                "filter": {
                    "type": "or",
                    "fields": [
                        {"type": "selector", "dimension": "page", "value": "keep"},
                        {
                            "type": "bound",
                            "dimension": "added",
                            "lower": "100",
                            "ordering": "numeric",
                        },
                    ],
                }
            },
            "granularitySpec": {"intervals": ["2024-01-01/2024-01-02"]},
        }
    )
    rows = _rows(
        p,
        _json(ts=T0, page="keep"),
        _json(ts=T0, page="drop", added=5),
        _json(ts=T0, page="drop", added=500),
        _json(ts=T0 - 1, page="keep"),  # before the interval
        _json(ts=T0 + 5000, page="keep"),
    )
    assert [r.dims["page"] for r in rows] == ["keep", "drop", "keep"]
    assert p.meters.thrown_away == 2
    # The caller's late/early message window.
    rows = _rows(
        p,
        _json(ts=T0 + 10, page="keep"),
        _json(ts=T0 + 20, page="keep"),
        min_time=T0 + 15,
        max_time=T0 + 100,
    )
    assert [r.timestamp for r in rows] == [T0 + 20]
    assert p.meters.thrown_away == 3


def test_csv_with_columns_and_list_delimiter() -> None:
    p = _parser(
        {"dimensionsSpec": {"dimensions": ["page", "tags"]}},
        {"type": "csv", "columns": ["ts", "page", "tags", "added"], "listDelimiter": "|"},
    )
    rows = _rows(p, b'1,"A, quoted",x|y,5\n2,B,,\n3,C,z,7,extra\n4,D')
    assert [(r.timestamp, r.dims, r.metrics) for r in rows] == [
        (1, {"page": "A, quoted", "tags": ["x", "y"]}, (None, 5, None)),
        (2, {"page": "B"}, (None, None, None)),
        (4, {"page": "D"}, (None, None, None)),
    ]
    assert p.meters.unparseable == 1 and p.meters.processed == 3


def test_csv_header_skip_rows_and_tsv() -> None:
    p = _parser(
        fmt={"type": "csv", "findColumnsFromHeader": True, "skipHeaderRows": 1},
    )
    rows = _rows(p, b"# comment line\nts,page,added\n1,A,2\n")
    assert [(r.dims, r.metrics) for r in rows] == [({"page": "A"}, (None, 2, None))]
    tsv = _parser(fmt={"type": "tsv", "columns": ["ts", "page"]})
    assert [r.dims for r in _rows(tsv, b"1\tA b\n")] == [{"page": "A b"}]


def test_json_flatten_spec() -> None:
    p = _parser(
        {"dimensionsSpec": {"dimensions": ["page", "city", "first_tag", "all_ids", "lang"]}},
        {
            "type": "json",
            "flattenSpec": {
                "useFieldDiscovery": True,
                "fields": [
                    {"type": "path", "name": "city", "expr": "$.geo.city"},
                    {"type": "path", "name": "first_tag", "expr": "$.tags[0]"},
                    {"type": "path", "name": "all_ids", "expr": "$.items[*].id"},
                    {"type": "tree", "name": "lang", "nodes": ["meta", "lang"]},
                ],
            },
        },
    )
    record = _json(
        ts=1,
        page="A",
        geo={"city": "Paris"},
        tags=["t1", "t2"],
        items=[{"id": "b"}, {"id": "a"}],
        meta={"lang": "fr"},
    )
    (row,) = _rows(p, record)
    assert row.dims == {
        "page": "A",
        "city": "Paris",
        "first_tag": "t1",
        "all_ids": ["a", "b"],
        "lang": "fr",
    }


def test_a_transform_failing_on_a_row_makes_it_unparseable_not_a_crash() -> None:
    p = _parser(
        {
            "dimensionsSpec": {"dimensions": ["shout"]},
            "transformSpec": {
                "transforms": [
                    # A multi-value field read as a scalar AND as an array is invalid (Druid's
                    # Parser.validateExpr): that row fails, the next (x a plain string) does not.
                    {
                        "type": "expression",
                        "name": "shout",
                        "expression": "upper(concat(x, array_length(x), y))",
                    }
                ]
            },
        }
    )
    rows = _rows(p, _json(ts=T0, x=["a", "b"], y=["c"]), _json(ts=T0, x="c", y="d"))
    assert [r.dims for r in rows] == [{"shout": "C1D"}]
    assert p.meters.unparseable == 1
