"""Druid's SQL reference pages as cases (``cases_*.py``), each checked three ways over a real
broker and data node serving Druid's test datasources (see ``framework.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from tests.conformance.fixtures import duckdb_tables, segments
from tests.conformance.framework import (
    DERIVE,
    SAME,
    Case,
    NoNative,
    Refused,
    Rows,
    all_cases,
    expression_scan,
    from_duckdb,
    from_native,
    native_rows,
    same_rows,
)
from tests.support.sqlenv import ThreadedBroker

CASES = all_cases()
ALL = [pytest.param(c, id=i) for i, c in CASES]
NATIVE = [pytest.param(c, id=i) for i, c in CASES if not isinstance(c.native, NoNative)]
DUCKDB = [pytest.param(c, id=i) for i, c in CASES if c.duckdb is not None]


async def _ready(http: httpx.AsyncClient, url: str) -> bool:
    for table in ("foo", "numfoo"):
        r = await http.post(f"{url}/druid/v2/sql", json={"query": f"SELECT COUNT(*) FROM {table}"})
        if r.status_code != 200 or r.json() != [{"EXPR$0": 6}]:
            return False
    return True


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedBroker]:
    b = ThreadedBroker(tmp_path_factory.mktemp("conformance"), segments(), _ready)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for name, table in duckdb_tables().items():
        con.register(name, table)
    con.execute("SET TimeZone = 'UTC'")
    try:
        yield con
    finally:
        con.close()


@pytest.fixture(scope="module")
def answers() -> dict[int, httpx.Response]:
    """The SQL answer of each case, asked once and shared by its three checks."""
    return {}


def sql_answer(broker: ThreadedBroker, answers: dict[int, httpx.Response], case: Case) -> Any:
    key = id(case)
    if key not in answers:
        answers[key] = broker.post(
            "/druid/v2/sql",
            {
                "query": case.sql,
                "resultFormat": "array",
                "header": True,
                "sqlTypesHeader": True,
                "context": case.context,
            },
        )
    return answers[key]


def typed_rows(resp: httpx.Response) -> tuple[list[str], list[str], Rows]:
    assert resp.status_code == 200, resp.text
    names, types, *rows = resp.json()
    return names, types, rows


@pytest.mark.parametrize("case", ALL)
def test_sql(case: Case, broker: ThreadedBroker, answers: dict[int, httpx.Response]) -> None:
    resp = sql_answer(broker, answers, case)
    if isinstance(case.expected, Refused):
        assert resp.status_code == 400, resp.text
        assert case.expected.name.upper() in resp.json()["errorMessage"].upper(), resp.text
        return
    _, _, rows = typed_rows(resp)
    assert same_rows(rows, case.expected), f"{case.sql}\n got {rows}\nwant {case.expected}"


def derived_native(broker: ThreadedBroker, case: Case) -> tuple[dict[str, Any], list[str]]:
    """The native query of kdruid's EXPLAIN, and the native column behind each SQL column."""
    resp = broker.post(
        "/druid/v2/sql",
        {"query": f"EXPLAIN PLAN FOR {case.sql}", "resultFormat": "array", "context": case.context},
    )
    assert resp.status_code == 200, f"EXPLAIN: {resp.text}"
    plan = orjson.loads(resp.json()[0][0])
    assert len(plan) == 1, f"more than one native query: {plan}"
    query = plan[0]["query"]
    query["context"] = {
        k: v for k, v in query.get("context", {}).items() if k not in ("sqlQueryId", "queryId")
    }
    return query, [m["queryColumn"] for m in plan[0]["columnMappings"]]


@pytest.mark.parametrize("case", NATIVE)
def test_native(case: Case, broker: ThreadedBroker, answers: dict[int, httpx.Response]) -> None:
    assert isinstance(case.expected, list)
    names, types, _ = typed_rows(sql_answer(broker, answers, case))
    if case.native is DERIVE:
        query, wanted = derived_native(broker, case)
    elif isinstance(case.native, str):
        assert len(types) == 1, "a native expression stands for a one-column SQL answer"
        query, wanted = expression_scan(case, case.native, types[0]), ["v0"]
    else:
        assert isinstance(case.native, dict)
        query, wanted = case.native, []
    resp = broker.post("/druid/v2", query)
    assert resp.status_code == 200, f"{orjson.dumps(query).decode()}\n{resp.text}"
    got_names, got = native_rows(query, resp.json())
    if wanted:
        missing = [(n, w) for n, w in zip(names, wanted, strict=True) if w not in got_names]
        assert not missing, f"computed at the broker, not in the native query: {missing}"
        idx = [got_names.index(w) for w in wanted]
        got = [[r[i] for i in idx] for r in got]
    rows = [[from_native(v, t) for v, t in zip(r, types, strict=True)] for r in got]
    assert same_rows(rows, case.expected), (
        f"{orjson.dumps(query).decode()}\n got {rows}\nwant {case.expected}"
    )


@pytest.mark.parametrize("case", DUCKDB)
def test_duckdb(case: Case, duck: duckdb.DuckDBPyConnection) -> None:
    assert isinstance(case.expected, list)
    text = case.sql if case.duckdb is SAME else case.duckdb
    assert isinstance(text, str)
    rows = [[from_duckdb(v) for v in r] for r in duck.execute(text).fetchall()]
    assert same_rows(rows, case.expected, strict=False), (
        f"{text}\n got {rows}\nwant {case.expected}"
    )
