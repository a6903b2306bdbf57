"""The lookups config API on a real coordinator, stored in the metadata store, and a broker and
a historical loading the lookups of their tier from it."""

from __future__ import annotations

from pathlib import Path

from common.aio import wait_until
from common.lookups import config as lc
from services.coordinator.service import CoordinatorService
from tests.component.test_kill import start_coordinator
from tests.support.cluster import cluster, sqlite_properties
from tests.support.segments import historical_props

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


async def test_broker_and_historical_load_their_tier(tmp_path: Path) -> None:
    poll = {"druid.lookup.pollingPeriod": "PT0.2S"}
    async with cluster(sqlite_properties(tmp_path)) as c:
        await start_coordinator(c)
        h = await c.start("historical", "h", **historical_props(tmp_path, "h"), **poll)
        b = await c.start("broker", **{**poll, "druid.lookup.tier": "hot"})
        url = c.nodes["coordinator"].url + URL
        body = {
            "__default": {"country": spec("v1", {"US": "United States"})},
            "hot": {"city": spec("v1", {"SF": "San Francisco"})},
        }
        assert (await c.http.post(url + "/config", json=body)).status_code == 202

        async def listed(node_url: str, want: list[str]) -> bool:
            r = await c.http.get(node_url + "/druid/listen/v1/lookups")
            return r.status_code == 200 and sorted(r.json()) == want

        await wait_until(lambda: listed(h.url, ["country"]), within=10, what="historical")
        await wait_until(lambda: listed(b.url, ["city"]), within=10, what="broker")
        one = await c.http.get(h.url + "/druid/listen/v1/lookups/country")
        assert one.json() == spec("v1", {"US": "United States"})
        assert (await c.http.get(h.url + "/druid/listen/v1/lookups/city")).status_code == 404

        # an update and a delete reach the node on its next poll
        r = await c.http.post(url + "/config/__default/country", json=spec("v2", {"FR": "France"}))
        assert r.status_code == 202
        await c.http.post(url + "/config/__default/region", json=spec("v1", {}))

        async def updated() -> bool:
            r = await c.http.get(h.url + "/druid/listen/v1/lookups")
            got = r.json()
            return sorted(got) == ["country", "region"] and got["country"]["version"] == "v2"

        await wait_until(updated, within=10, what="historical update")
        assert h.service.lookups.get("country") == {"FR": "France"}
        await c.http.delete(url + "/config/hot/city")
        await wait_until(lambda: listed(b.url, []), within=10, what="broker delete")
