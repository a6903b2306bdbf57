"""Druid SQL result formats, byte for byte as Druid's writers produce them."""

from __future__ import annotations

import copy
import math
import random
import struct

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.query.javatext import double_texts
from common.query.sql import results
from common.query.sql.execute import ResultSet, iso_utc_array
from common.query.sql.functions import TS, java_double
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


def test_plain_columns() -> None:
    """Strings with quotes, longs, timestamps and nulls."""
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


def test_double_texts_are_java_double() -> None:
    """The vectorised texts equal ``java_double`` value by value: random bit patterns, the
    plain-decimal range and its edges, rounded decimals, FLOAT columns."""
    rng = random.Random(7)
    values = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(5000)]
    values += [rng.uniform(-1e8, 1e8) for _ in range(2000)]
    values += [round(rng.uniform(0, 1e7), rng.randint(0, 6)) for _ in range(2000)]
    values += [1e-3, -1e-3, math.nextafter(1e-3, 0), math.nextafter(1e7, 0), 1e7, -0.0, 0.0]
    values += [5e-324, 1.7976931348623157e308, float("inf"), float("-inf"), 1.0, 123456.0]
    # whole numbers from 1e7 (Java's exponent layout) up to 2**53 and past it
    values += [float(rng.randint(10**7, 2**53)) * rng.choice((1, -1)) for _ in range(2000)]
    values += [1e7, -1e7, 1.5e7, 9.11526338e8, 2.0**53, 2.0**53 - 1, 2.0**53 + 2, 1e15, 1e16]
    for typ in (pa.float64(), pa.float32()):
        col = pa.array([*values, None, float("nan")], typ)
        want = [None if v is None else java_double(v) for v in col.to_pylist()]
        assert double_texts(col) == want
    chunked = pa.chunked_array([[1.0, None], [2.5e-9]], pa.float64())
    assert double_texts(chunked) == ["1.0", None, "2.5E-9"]


@given(st.lists(st.one_of(st.none(), st.floats()), max_size=30))
def test_double_texts_property(values: list[float | None]) -> None:
    want = [None if v is None else java_double(v) for v in values]
    assert double_texts(pa.array(values, pa.float64())) == want


MIXED = ResultSet(
    ["x", "f", "b", "a", "m", "x", "t"],
    ["DOUBLE", "FLOAT", "LONG", "ARRAY<DOUBLE>", "STRING", "DOUBLE", "LONG"],
    ["DOUBLE", "FLOAT", "BOOLEAN", "ARRAY", "VARCHAR", "DOUBLE", "TIMESTAMP"],
    [
        pa.array([float("nan"), float("-inf"), -0.0, 1e-4, 9999999.999, 1e20], pa.float64()),
        pa.array([0.1, None, 1.5, 3e9, -0.0, 7.0], pa.float32()),
        pa.array([True, False, None, True, True, True], pa.bool_()),
        pa.array([[1.0, 2.5], None, [], [1e10, None], [0.5], [0.5]], pa.large_list(pa.float64())),
        pa.array([["a", "b"], ["c"], None, [], ["x,y"], ['q"']], pa.list_(pa.string())),
        pa.array([1.5, None, 2.0, 1e-3, 0.0, float("inf")], pa.float64()),
        pa.array([0, None, 1, 2, 3, 4], pa.int64()).cast(TS),
    ],
)
MIXED_ROWS = [
    rb'"NaN",0.10000000149011612,true,"[1.0,2.5]","[\"a\",\"b\"]",1.5,"1970-01-01T00:00:00.000Z"',
    rb'"-Infinity",null,false,null,"c",null,null',
    rb'-0.0,1.5,null,"[]",null,2.0,"1970-01-01T00:00:00.001Z"',
    rb'1.0E-4,3.0E9,true,"[1.0E10,null]","[]",0.001,"1970-01-01T00:00:00.002Z"',
    rb'9999999.999,-0.0,true,"[0.5]","x,y",0.0,"1970-01-01T00:00:00.003Z"',
    rb'1.0E20,7.0,true,"[0.5]","q\"","Infinity","1970-01-01T00:00:00.004Z"',
]


def test_mixed_columns_every_format() -> None:
    """Doubles (NaN, infinities, -0.0, exponents), FLOATs, booleans, arrays, multi-value
    strings, nulls and a repeated name, in each format as Druid writes them."""
    names = b'["x","f","b","a","m","x","t"]'
    rows = MIXED_ROWS
    assert write_result(MIXED, "array", header=True) == (
        b"[" + b",".join([names] + [b"[" + r + b"]" for r in rows]) + b"]\n"
    )
    assert write_result(MIXED, "arrayLines") == b"".join(b"[" + r + b"]\n" for r in rows) + b"\n"
    obj = write_result(MIXED, "object")
    assert obj.startswith(
        b'[{"x":"NaN","f":0.10000000149011612,"b":true,"a":"[1.0,2.5]",'
        rb'"m":"[\"a\",\"b\"]","x":1.5,"t":"1970-01-01T00:00:00.000Z"},'
    )
    assert obj.count(b'"x":') == 12 and obj.endswith(b'"t":"1970-01-01T00:00:00.004Z"}]\n')
    lines = write_result(MIXED, "objectLines", header=True).split(b"\n")
    assert lines[0] == b'{"x":null,"f":null,"b":null,"a":null,"m":null,"x":null,"t":null}'
    assert len(lines) == 9 and lines[-2:] == [b"", b""]
    assert write_result(MIXED, "csv").split(b"\n")[:3] == [
        b'NaN,0.10000000149011612,true,"[1.0,2.5]","[""a"",""b""]",1.5,1970-01-01T00:00:00.000Z',
        b"-Infinity,,false,,c,,",
        b"-0.0,1.5,,[],,2.0,1970-01-01T00:00:00.001Z",
    ]
    unstringified = copy.copy(MIXED)
    unstringified.stringify_arrays = False
    assert write_result(unstringified, "arrayLines").split(b"\n")[3] == (
        b'[1.0E-4,3.0E9,true,[1.0E10,null],"[]",0.001,"1970-01-01T00:00:00.002Z"]'
    )


def test_object_is_object_lines_in_an_array() -> None:
    """``object`` is spliced from column texts, ``objectLines`` written from dicts (or
    fragments, for a repeated name): the same objects either way, with and without a header,
    arrays stringified or not."""
    unstringified = copy.copy(MIXED)
    unstringified.stringify_arrays = False
    for rs in (RS, MIXED, unstringified):
        for header in (False, True):
            lines = write_result(rs, "objectLines", header=header).split(b"\n")[:-2]
            assert write_result(rs, "object", header=header) == b"[" + b",".join(lines) + b"]\n"
    empty = ResultSet(["a"], ["STRING"], ["VARCHAR"], [pa.array([], pa.string())])
    assert write_result(empty, "object", header=True) == b'[{"a":null}]\n'


@given(
    st.lists(
        st.one_of(st.none(), st.integers(-62_135_596_800_000 - 10, 253_402_300_799_999 + 10)),
        max_size=40,
    )
)
def test_iso_utc_is_arrows_strftime(millis: list[int | None]) -> None:
    """Timestamps print as Joda's ISO text in UTC; numpy's text where years have four digits,
    Arrow's ``strftime`` (the reference) elsewhere, nulls as null."""
    col = pa.array([*millis, 0, -1, 951_782_400_000], pa.int64()).cast(TS)
    want = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
    assert iso_utc_array(col).to_pylist() == want


def test_written_in_arrow_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``ARROW_ROWS`` rows on, ``object`` and ``array`` are written in Arrow: the same
    bytes as from Python's lists, for every kind of column (and a string that needs escaping,
    a dictionary, a repeated name, zoned timestamps, headers)."""
    unstringified = copy.copy(MIXED)
    unstringified.stringify_arrays = False
    n = 300
    big = ResultSet(
        ["t", "n", "x", "s", "d", "b", "n"],
        ["LONG", "LONG", "DOUBLE", "STRING", "STRING", "LONG", "LONG"],
        ["TIMESTAMP", "BIGINT", "DOUBLE", "VARCHAR", "VARCHAR", "BOOLEAN", "BIGINT"],
        [
            pa.array(range(0, n * 1000, 1000), pa.int64()).cast(TS),
            pa.array([i if i % 7 else None for i in range(n)], pa.int64()),
            pa.array([i / 8 if i % 5 else float("nan") for i in range(n)], pa.float64()),
            pa.array([f"s{i}" if i != 99 else 'q"\n' for i in range(n)], pa.string()),
            pa.array([f"d{i % 3}" if i % 4 else None for i in range(n)]).dictionary_encode(),
            pa.array([bool(i % 2) for i in range(n)]),
            pa.array(range(n), pa.int64()),
        ],
    )
    zoned = copy.copy(big)
    zoned.time_zone = "America/New_York"
    for rs in (RS, MIXED, unstringified, big, zoned):
        for header in (False, True):
            for fmt in ("object", "array"):
                monkeypatch.setattr(results, "ARROW_ROWS", 10**9)
                lists = write_result(rs, fmt, header=header, sql_types_header=header)
                monkeypatch.setattr(results, "ARROW_ROWS", 0)
                assert write_result(rs, fmt, header=header, sql_types_header=header) == lists
