"""End to end, the data lifecycle: a drop rule makes the historical unload a segment and marks
it unused; a kill task (submitted through the coordinator, run by the overlord) then removes its
file from deep storage and its row from ``druid_segments``. The neighbouring day stays loaded.

Coordinator, historical and overlord in this process (real uvicorn servers, SQLite metadata,
local deep storage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.aio import wait_until
from common.segments.deep_storage import DeepStorage
from common.segments.segment import SegmentId
from services.coordinator.service import CoordinatorService
from services.historical.service import HistoricalService
from tests.support.cluster import cluster, sqlite_properties
from tests.support.segments import COORD, historical_props, make_segment

pytestmark = pytest.mark.slow


async def test_drop_rule_unloads_then_kill_deletes_file_and_row(tmp_path: Path) -> None:
    props = {
        **sqlite_properties(tmp_path),
        "druid.coordinator.period": "PT1S",
        "druid.segmentCache.dropSegmentDelayMillis": "100",
    }
    async with cluster(props) as c:
        coord = await c.start("coordinator")
        hist = await c.start("historical", "h1", **historical_props(tmp_path, "h1"))
        await c.start("overlord")

        async def leaders() -> bool:
            a = await c.get("coordinator", f"{COORD}/isLeader")
            b = await c.get("overlord", "/druid/indexer/v1/isLeader")
            return a.status_code == 200 and b.status_code == 200

        await wait_until(leaders, within=20, what="coordinator and overlord lead")
        service = coord.service
        historical = hist.service
        assert isinstance(service, CoordinatorService)
        assert isinstance(historical, HistoricalService)
        store = service.store
        deep = DeepStorage("local", storage_directory=str(tmp_path / "deep"))
        old, kept = make_segment(tmp_path, 0), make_segment(tmp_path, 1)
        rules = [{"type": "loadForever", "tieredReplicants": {"_default_tier": 1}}]
        r = await c.http.post(f"{coord.url}{COORD}/rules/_default", json=rules)
        assert r.status_code == 200, r.text
        await store.insert_segments([old, kept])

        def served(seg_id: SegmentId) -> bool:
            return historical.announcer.is_served(seg_id)

        await wait_until(
            lambda: served(old.id) and served(kept.id), within=30, what="both days loaded"
        )

        drop_first_day = [{"type": "dropByInterval", "interval": "2024-01-01/2024-01-02"}]
        r = await c.http.post(f"{coord.url}{COORD}/rules/wiki", json=drop_first_day)
        assert r.status_code == 200, r.text
        await wait_until(lambda: not served(old.id), within=30, what="the historical unloads")
        row = await store.get_segment(old.identifier)
        assert row is not None and row.used is False
        assert served(kept.id)
        assert deep.exists(old.load_spec)  # unused is not deleted

        r = await c.http.delete(f"{coord.url}{COORD}/datasources/wiki/intervals/2024-01-01_P1D")
        assert r.status_code == 200, r.text

        async def killed() -> bool:
            return await store.get_segment(old.identifier) is None

        await wait_until(killed, within=30, what="the kill task deletes the row")
        await wait_until(
            lambda: not deep.exists(old.load_spec), within=10, what="the file is deleted"
        )
        assert deep.exists(kept.load_spec)
        kept_row = await store.get_segment(kept.identifier)
        assert kept_row is not None and kept_row.used
        assert served(kept.id)
