"""The lookups config's pure core: container validation and Druid's newer-version merge."""

from __future__ import annotations

import pytest

from common.errors import InvalidInput
from common.lookups import config as lc


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
