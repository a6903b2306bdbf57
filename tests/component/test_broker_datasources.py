"""Datasources through a real broker and data nodes: Druid's Kafka integration test's third query
shape (topN over a join of the table with an inline datasource, grouping on an expression virtual
column over the joined column), a query over an inline datasource answered by the broker, a
union of two tables, a join to a lookup datasource, and clear 400s for datasources not built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from test_broker_query import DAY, T0, V1, environment

from common.aio import wait_until
from common.segments.intervals import Interval
from common.segments.segment import DataSegment

LANGS = ["en", "ja", "en", "ru", "en", "ja", None, "de"]


def lang_segment(ds: str, d: int) -> tuple[DataSegment, pa.Table]:
    iv = Interval(T0 + d * DAY, T0 + (d + 1) * DAY)
    n = len(LANGS)
    table = pa.table(
        {
            "__time": pa.array([iv.start + i * (DAY // n) for i in range(n)], pa.int64()),
            "language": pa.array(LANGS).dictionary_encode(),
            "count": pa.array([i + 1 + d for i in range(n)], pa.int64()),
        }
    )
    seg = DataSegment(dataSource=ds, interval=iv, version=V1, dimensions=["language"])
    return seg, table


JOIN_TOPN: dict[str, Any] = {
    "queryType": "topN",
    "dataSource": {
        "type": "join",
        "left": "wiki",
        "right": {
            "type": "inline",
            "columnNames": ["language", "lookupLanguage"],
            "columnTypes": ["string", "string"],
            "rows": [["en", "inline join!"]],
        },
        "rightPrefix": "j.",
        "condition": 'language == "j.language"',
        "joinType": "LEFT",
    },
    "intervals": ["2024-01-01/2024-01-03"],
    "granularity": "all",
    "virtualColumns": [
        {
            "type": "expression",
            "name": "lookupLanguage",
            "expression": 'nvl("j.lookupLanguage", "language")',
            "outputType": "string",
        }
    ],
    "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"}],
    "dimension": "lookupLanguage",
    "metric": "count",
    "threshold": 3,
}


def _expected_topn() -> list[dict[str, Any]]:
    totals: dict[Any, int] = {}
    for d in (0, 1):
        for i, lang in enumerate(LANGS):
            key = "inline join!" if lang == "en" else lang
            totals[key] = totals.get(key, 0) + i + 1 + d
    best = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0] is not None, kv[0]))[:3]
    return [{"lookupLanguage": k, "count": v} for k, v in best]


async def test_datasources_through_the_broker(tmp_path: Path) -> None:
    async with environment(tmp_path) as env:
        a = await env.data_node("a")
        b = await env.data_node("b")
        a.serve(*lang_segment("wiki", 0))
        b.serve(*lang_segment("wiki", 1))
        b.serve(*lang_segment("wiki2", 0))
        url = await env.broker()

        async def ready() -> bool:
            r = await env.query(
                url,
                {
                    "queryType": "timeseries",
                    "dataSource": {"type": "union", "dataSources": ["wiki", "wiki2"]},
                    "intervals": ["2024-01-01/2024-01-03"],
                    "aggregations": [{"type": "count", "name": "rows"}],
                },
            )
            rows = r.json() if r.status_code == 200 else []
            return bool(rows) and rows[0]["result"]["rows"] == 3 * len(LANGS)

        await wait_until(ready, within=20, what="the broker to see every segment")

        # The Kafka integration test's third query, same shape over our rows.
        resp = await env.query(url, JOIN_TOPN)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body[0]["timestamp"] == "2024-01-01T00:00:00.000Z"
        assert body[0]["result"] == _expected_topn()
        assert body[0]["result"][0]["lookupLanguage"] == "inline join!"

        # INNER: only rows with a match survive.
        inner = {
            **JOIN_TOPN,
            "dataSource": {**JOIN_TOPN["dataSource"], "joinType": "INNER"},
        }
        resp = await env.query(url, inner)
        assert resp.status_code == 200, resp.text
        en_total = sum(i + 1 + d for d in (0, 1) for i, v in enumerate(LANGS) if v == "en")
        assert resp.json()[0]["result"] == [{"lookupLanguage": "inline join!", "count": en_total}]

        # A lookup datasource as the join's right side (columns k and v), from the lookups the
        # broker has loaded (set here directly; test_lookups_api covers the coordinator pull).
        broker_service = env.servers["broker"].app.state.service
        broker_service.lookups.apply(
            {
                "__default": {
                    "langs": {
                        "version": "v1",
                        "lookupExtractorFactory": {"type": "map", "map": {"en": "inline join!"}},
                    }
                }
            }
        )
        lookup_join = {
            **JOIN_TOPN,
            "dataSource": {
                **JOIN_TOPN["dataSource"],
                "right": {"type": "lookup", "lookup": "langs"},
                "condition": 'language == "j.k"',
            },
            "virtualColumns": [
                {**JOIN_TOPN["virtualColumns"][0], "expression": 'nvl("j.v", "language")'}
            ],
        }
        resp = await env.query(url, lookup_join)
        assert resp.status_code == 200, resp.text
        assert resp.json()[0]["result"] == _expected_topn()
        missing = {
            **lookup_join,
            "dataSource": {
                **lookup_join["dataSource"],
                "right": {"type": "lookup", "lookup": "nope"},
            },
        }
        resp = await env.query(url, missing)
        assert resp.status_code == 400 and "nope" in resp.json()["errorMessage"]

        # An inline datasource alone: the broker answers from the rows in the query.
        inline = {
            "queryType": "groupBy",
            "dataSource": {
                "type": "inline",
                "columnNames": ["k", "v"],
                "columnTypes": ["string", "long"],
                "rows": [["x", 1], ["y", 2], ["x", 3]],
            },
            "intervals": ["-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"],
            "granularity": "all",
            "dimensions": ["k"],
            "aggregations": [{"type": "longSum", "name": "s", "fieldName": "v"}],
        }
        resp = await env.query(url, inline)
        assert resp.status_code == 200, resp.text
        assert [(r["event"]["k"], r["event"]["s"]) for r in resp.json()] == [("x", 4), ("y", 2)]

        # A query datasource: the broker runs the inner topN, then the outer groupBy on its rows.
        nested = {
            "queryType": "timeseries",
            "dataSource": {"type": "query", "query": JOIN_TOPN},
            "intervals": ["2000/2100"],
            "granularity": "all",
            "aggregations": [
                {"type": "longSum", "name": "total", "fieldName": "count"},
                {"type": "count", "name": "n"},
            ],
        }
        resp = await env.query(url, nested)
        assert resp.status_code == 200, resp.text
        top = _expected_topn()
        assert resp.json()[0]["result"] == {"total": sum(r["count"] for r in top), "n": len(top)}
        resp = await env.query(url, {**nested, "context": {"maxSubqueryRows": 2}})
        assert resp.status_code == 400, resp.text
        assert "maxSubqueryRows" in resp.json()["errorMessage"]

        # A windowOperator query: the inner topN runs as usual, the operators at the broker.
        window = {
            "queryType": "windowOperator",
            "dataSource": {"type": "query", "query": JOIN_TOPN},
            "operatorDefinition": [
                {"type": "naiveSort", "columns": [{"column": "count", "direction": "ASC"}]},
                {"type": "naivePartition", "partitionColumns": []},
                {
                    "type": "window",
                    "processor": {
                        "type": "composing",
                        "processors": [
                            {"type": "rowNumber", "outputColumn": "rn"},
                            {
                                "type": "framedAgg",
                                "frame": {
                                    "peerType": "ROWS",
                                    "lowUnbounded": True,
                                    "lowOffset": 0,
                                    "uppUnbounded": False,
                                    "uppOffset": 0,
                                    "orderBy": [],
                                },
                                "aggregations": [
                                    {"type": "longSum", "name": "run", "fieldName": "count"}
                                ],
                            },
                        ],
                    },
                },
            ],
            "outputSignature": [{"name": n} for n in ("lookupLanguage", "rn", "run")],
        }
        resp = await env.query(url, window)
        assert resp.status_code == 200, resp.text
        asc = sorted(top, key=lambda r: r["count"])
        running = [sum(r["count"] for r in asc[: i + 1]) for i in range(len(asc))]
        assert resp.json() == [
            {
                "columns": ["lookupLanguage", "rn", "run"],
                "events": [[r["lookupLanguage"], i + 1, running[i]] for i, r in enumerate(asc)],
            }
        ]
        bad = {**window, "operatorDefinition": [{"type": "window", "processor": {"type": "x"}}]}
        resp = await env.query(url, bad)
        assert resp.status_code == 400 and "processor type [x]" in resp.json()["errorMessage"]

        # Not built: a clear 400 in Druid's error JSON, never a silent answer.
        for ds, needle in [
            ({**JOIN_TOPN["dataSource"], "joinType": "RIGHT"}, "joinType"),
            ({**JOIN_TOPN["dataSource"], "condition": 'language != "j.language"'}, "equalities"),
        ]:
            resp = await env.query(url, {**JOIN_TOPN, "dataSource": ds})
            assert resp.status_code == 400, resp.text
            assert needle in resp.json()["errorMessage"]
