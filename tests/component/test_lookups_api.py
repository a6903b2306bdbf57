"""The lookups config API on a real coordinator, stored in the metadata store."""

from __future__ import annotations

from pathlib import Path

from common.lookups import config as lc
from services.coordinator.service import CoordinatorService
from tests.component.test_kill import start_coordinator
from tests.support.cluster import cluster, sqlite_properties

URL = "/druid/coordinator/v1/lookups"


def spec(version: str, mapping: dict[str, str]) -> dict[str, object]:
    return {"version": version, "lookupExtractorFactory": {"type": "map", "map": mapping}}


async def test_lookups_config_api(tmp_path: Path) -> None:
    async with cluster(sqlite_properties(tmp_path)) as c:
        coord = await start_coordinator(c)
        assert isinstance(coord, CoordinatorService)
        url = c.nodes["coordinator"].url + URL
        assert (await c.http.get(url + "/config")).json() == []
        r = await c.http.post(url + "/config", json={})
        assert r.status_code == 202
        body = {"__default": {"country": spec("v1", {"US": "United States"})}, "hot": {}}
        assert (await c.http.post(url + "/config", json=body)).status_code == 202
        assert (await c.http.get(url + "/config")).json() == ["__default", "hot"]
        assert (await c.http.get(url + "/config/__default")).json() == ["country"]
        got = await c.http.get(url + "/config/__default/country")
        assert got.json() == spec("v1", {"US": "United States"})

        stale = await c.http.post(url + "/config/__default/country", json=spec("v1", {}))
        assert stale.status_code == 400 and "not newer" in stale.json()["errorMessage"]
        r = await c.http.post(url + "/config/__default/country", json=spec("v2", {"FR": "France"}))
        assert r.status_code == 202
        jdbc = {"version": "v1", "lookupExtractorFactory": {"type": "cachedNamespace"}}
        r = await c.http.post(url + "/config/hot/db", json=jdbc)
        assert r.status_code == 400 and "cachedNamespace" in r.json()["errorMessage"]
        r = await c.http.get(url + "/config", params={"discover": "true"})
        assert r.status_code == 400

        stored = lc.decode(await coord.store.get_config("lookupsConfig"))
        assert stored["__default"]["country"]["version"] == "v2"
        assert (await c.http.get(url + "/config/all")).json() == stored

        assert (await c.http.delete(url + "/config/__default/country")).status_code == 202
        assert (await c.http.get(url + "/config/__default/country")).status_code == 404
        assert (await c.http.delete(url + "/config/hot")).status_code == 202
        assert (await c.http.get(url + "/config/hot")).status_code == 404
        assert (await c.http.get(url + "/config")).json() == ["__default"]
