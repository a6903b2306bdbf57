"""The lookups config's pure core: container validation and Druid's newer-version merge."""

from __future__ import annotations

import pytest

from common.config import load_settings
from common.errors import ConfigError, InvalidInput
from common.lookups import config as lc
from common.lookups.datasource import inline_lookups
from common.lookups.node import NodeLookups


def spec(version: str, mapping: dict[str, str]) -> dict[str, object]:
    return {"version": version, "lookupExtractorFactory": {"type": "map", "map": mapping}}


def test_merge_adds_and_keeps_others() -> None:
    first = lc.merge({}, {"__default": {"a": spec("v1", {"x": "1"})}})
    second = lc.merge(first, {"__default": {"b": spec("v1", {"y": "2"})}, "t2": {}})
    assert sorted(second["__default"]) == ["a", "b"]
    assert second["t2"] == {}
    assert first["__default"].keys() == {"a"}  # the input is not mutated


def test_update_must_be_newer() -> None:
    cfg = lc.merge({}, {"__default": {"a": spec("v1", {})}})
    with pytest.raises(InvalidInput, match="not newer"):
        lc.merge(cfg, {"__default": {"a": spec("v1", {"x": "1"})}})
    assert lc.merge(cfg, {"__default": {"a": spec("v2", {})}})["__default"]["a"]["version"] == "v2"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (
            {"version": "v1", "lookupExtractorFactory": {"type": "cachedNamespace"}},
            "cachedNamespace",
        ),
        ({"lookupExtractorFactory": {"type": "map", "map": {}}}, "version"),
        ({"version": "v1", "lookupExtractorFactory": {"type": "map", "map": {"k": 1}}}, "strings"),
        ({"version": "v1", "lookupExtractorFactory": {"type": "map", "map": []}}, "map"),
        ({"version": "v1", "nope": 1, "lookupExtractorFactory": {}}, "nope"),
    ],
)
def test_bad_container(raw: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        lc.parse_container("a", raw)


def test_encode_decode_roundtrip() -> None:
    cfg = lc.merge({}, {"__default": {"a": spec("v1", {"x": "1"})}})
    assert lc.decode(lc.encode(cfg)) == cfg
    assert lc.decode(None) == {}


def test_node_lookups_keep_their_tier_only() -> None:
    node = NodeLookups("hot", 1.0)
    node.apply({"__default": {"a": spec("v1", {"x": "1"})}, "hot": {"b": spec("v1", {"y": "2"})}})
    assert sorted(node.containers) == ["b"]
    assert node.get("b") == {"y": "2"} and node.get("a") is None


def test_lookup_tier_is_datasource_is_refused() -> None:
    with pytest.raises(ConfigError, match="lookupTierIsDatasource"):
        load_settings(
            "peon", properties={"druid.lookup.lookupTierIsDatasource": "true"}, environ={}
        )
    assert load_settings("broker", properties={}, environ={}).lookup.tier == "__default"


def test_lookup_datasource_becomes_inline_everywhere() -> None:
    maps = {"langs": {"en": "English"}}
    query = {
        "queryType": "groupBy",
        "dataSource": {
            "type": "query",
            "query": {
                "dataSource": {
                    "type": "join",
                    "left": "wiki",
                    "right": {"type": "lookup", "lookup": "langs"},
                }
            },
        },
    }
    out = inline_lookups(query, maps.get)
    right = out["dataSource"]["query"]["dataSource"]["right"]
    assert right == {
        "type": "inline",
        "columnNames": ["k", "v"],
        "columnTypes": ["STRING", "STRING"],
        "rows": [["en", "English"]],
    }
    assert query["dataSource"]["query"]["dataSource"]["right"]["type"] == "lookup"
    top = inline_lookups({"dataSource": {"type": "lookup", "lookup": "langs"}}, maps.get)
    assert top["dataSource"]["type"] == "inline"
    with pytest.raises(InvalidInput, match="nope"):
        inline_lookups({"dataSource": {"type": "lookup", "lookup": "nope"}}, maps.get)
