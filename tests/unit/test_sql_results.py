"""Druid SQL result formats, byte for byte as Druid's writers produce them."""

from __future__ import annotations

import pyarrow as pa

from common.query.sql.execute import ResultSet
from common.query.sql.functions import TS
from common.query.sql.results import write_result

RS = ResultSet(
    ["t", "n", "x", "s"],
    ["LONG", "LONG", "DOUBLE", "STRING"],
    ["TIMESTAMP", "BIGINT", "DOUBLE", "VARCHAR"],
    [
        pa.array([0, 86_400_000], pa.int64()).cast(TS),
        pa.array([1, None], pa.int64()),
        pa.array([1.0, 1e7], pa.float64()),
        pa.array(['a,"b"', None], pa.string()),
    ],
)


def test_object() -> None:
    assert write_result(RS, "object") == (
        b'[{"t":"1970-01-01T00:00:00.000Z","n":1,"x":1.0,"s":"a,\\"b\\""},'
        b'{"t":"1970-01-02T00:00:00.000Z","n":null,"x":1.0E7,"s":null}]\n'
    )


def test_object_header_types() -> None:
    body = write_result(RS, "objectLines", header=True, types_header=True, sql_types_header=True)
    first = body.split(b"\n")[0]
    assert first == (
        b'{"t":{"type":"LONG","sqlType":"TIMESTAMP"},"n":{"type":"LONG","sqlType":"BIGINT"},'
        b'"x":{"type":"DOUBLE","sqlType":"DOUBLE"},"s":{"type":"STRING","sqlType":"VARCHAR"}}'
    )
    assert body.endswith(b"}\n\n") and body.count(b"\n") == 4
    assert write_result(RS, "object", header=True).startswith(
        b'[{"t":null,"n":null,"x":null,"s":null},'
    )


def test_array_and_lines() -> None:
    assert write_result(RS, "array", header=True) == (
        b'[["t","n","x","s"],["1970-01-01T00:00:00.000Z",1,1.0,"a,\\"b\\""],'
        b'["1970-01-02T00:00:00.000Z",null,1.0E7,null]]\n'
    )
    assert write_result(RS, "arrayLines", header=True, sql_types_header=True) == (
        b'["t","n","x","s"]\n["TIMESTAMP","BIGINT","DOUBLE","VARCHAR"]\n'
        b'["1970-01-01T00:00:00.000Z",1,1.0,"a,\\"b\\""]\n'
        b'["1970-01-02T00:00:00.000Z",null,1.0E7,null]\n\n'
    )


def test_csv() -> None:
    assert write_result(RS, "csv", header=True, types_header=True) == (
        b"t,n,x,s\nLONG,LONG,DOUBLE,STRING\n"
        b'1970-01-01T00:00:00.000Z,1,1.0,"a,""b"""\n'
        b"1970-01-02T00:00:00.000Z,,1.0E7,\n\n"
    )


def test_empty_results() -> None:
    empty = ResultSet(["a"], ["LONG"], ["BIGINT"], [pa.array([], pa.int64())])
    assert write_result(empty, "object") == b"[]\n"
    assert write_result(empty, "arrayLines") == b"\n\n"
    assert write_result(empty, "csv") == b"\n"


def test_plain_columns_fast_path_same_bytes() -> None:
    """No doubles nor lists: the one-call orjson path writes Druid's bytes too."""
    import pyarrow as pa

    from common.query.sql.execute import ResultSet
    from common.query.sql.functions import TS
    from common.query.sql.results import write_result

    rs = ResultSet(
        ["s", "n", "t"],
        ["STRING", "LONG", "LONG"],
        ["VARCHAR", "BIGINT", "TIMESTAMP"],
        [
            pa.array(['a"b', None], pa.string()),
            pa.array([1, None], pa.int64()),
            pa.array([0, 86_400_000], pa.int64()).cast(TS),
        ],
    )
    assert write_result(rs, "object") == (
        b'[{"s":"a\\"b","n":1,"t":"1970-01-01T00:00:00.000Z"},'
        b'{"s":null,"n":null,"t":"1970-01-02T00:00:00.000Z"}]\n'
    )
    assert write_result(rs, "array") == (
        b'[["a\\"b",1,"1970-01-01T00:00:00.000Z"],[null,null,"1970-01-02T00:00:00.000Z"]]\n'
    )
