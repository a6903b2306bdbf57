"""``/metrics`` on every node: Prometheus text with Druid's names mapped, per-node registries."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from common.aio import wait_until
from common.metrics import NodeMetrics, prom_name
from tests.support.cluster import cluster, sqlite_properties
from tests.support.segments import make_segment, start_cluster


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = s.value
    return out


def test_druid_names_map_to_prometheus_names() -> None:
    assert prom_name("query/time") == "druid_query_time"
    assert prom_name("serverview/sync/unstableTime") == "druid_serverview_sync_unstableTime"


def test_registries_are_per_node_and_callbacks_read_at_scrape_time() -> None:
    a, b = NodeMetrics("druid/broker", "h:1"), NodeMetrics("druid/broker", "h:2")
    value = [3.0]
    a.gauge_callback(
        "segment/count", "segments", lambda: [({"dataSource": "wiki"}, value[0])], ["dataSource"]
    )
    b.counter("query/count", "queries").labels(**b.labels()).inc()
    assert (
        'druid_segment_count{dataSource="wiki",host="h:1",service="druid/broker"} 3.0'
        in a.render().decode()
    )
    value[0] = 5.0
    assert samples(a.render().decode())["druid_segment_count"] == 5.0
    assert "druid_query_count" not in a.render().decode()
    assert samples(b.render().decode())["druid_query_count_total"] == 1.0


async def test_leader_status_is_scraped_from_each_elected_node(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        first = await c.start("coordinator")
        await wait_until(lambda: first.service.selector.is_leader(), within=10)  # type: ignore[attr-defined]
        await c.start("coordinator", name="coordinator2")
        await c.start("historical")

        leader = samples((await c.get("coordinator", "/metrics")).text)
        follower = samples((await c.get("coordinator2", "/metrics")).text)
        assert leader["druid_coordinator_leader"] == 1.0
        assert leader["druid_coordinator_leader_term"] == 1.0
        assert follower["druid_coordinator_leader"] == 0.0
        resp = await c.get("historical", "/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")


async def test_segment_and_sync_metrics_follow_the_cluster(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        coord, _, _ = await start_cluster(c, tmp_path)
        segments = [make_segment(tmp_path, d) for d in range(2)]
        await coord.service.store.insert_segments(segments)

        async def loaded() -> bool:
            s = samples((await c.get("h1", "/metrics")).text)
            return s.get("druid_segment_count") == 2.0

        await wait_until(loaded, within=30, what="h1 to report 2 segments")
        hist = (await c.get("h1", "/metrics")).text
        assert 'druid_segment_count{dataSource="wiki",host=' in hist
        assert samples(hist)["druid_segment_used"] == float(sum(s.size for s in segments))

        coord_metrics = (await c.get("coordinator", "/metrics")).text
        healthy = [
            line
            for line in coord_metrics.splitlines()
            if line.startswith("druid_serverview_sync_healthy{")
        ]
        assert len(healthy) == 2 and all(line.endswith(" 1.0") for line in healthy)
        assert "druid_segment_loadQueue_count" in coord_metrics


async def test_broker_counts_and_times_queries_by_outcome(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        broker = await c.start("broker")
        query = {
            "queryType": "timeseries",
            "dataSource": "nowhere",
            "intervals": ["2024-01-01/2024-01-02"],
            "granularity": "all",
            "aggregations": [{"type": "count", "name": "n"}],
        }
        for _ in range(2):
            assert (await c.http.post(broker.url + "/druid/v2", json=query)).status_code == 200
        bad = {**query, "queryType": "nope"}
        assert (await c.http.post(broker.url + "/druid/v2", json=bad)).status_code == 400

        text = (await c.get("broker", "/metrics")).text
        s = {
            (x.name, tuple(sorted(x.labels.items()))): x.value
            for f in text_string_to_metric_families(text)
            for x in f.samples
        }

        def value(name: str, **labels: str) -> float:
            return sum(
                v for (n, lbl), v in s.items() if n == name and labels.items() <= dict(lbl).items()
            )

        assert (
            value("druid_query_success_count_total", dataSource="nowhere", type="timeseries") == 2
        )
        assert value("druid_query_failed_count_total") == 1
        assert value("druid_query_count_total") == 3
        assert value("druid_query_time_count", dataSource="nowhere") == 2
        assert "druid_serverview_sync_healthy" in text
