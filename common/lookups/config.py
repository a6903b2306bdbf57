"""The lookups config as Druid's ``LookupCoordinatorManager`` keeps it: one JSON object in
``druid_config`` under ``lookupsConfig``, ``{tier: {lookupId: container}}``, where a container is
``{"version": "v1", "lookupExtractorFactory": {"type": "map", "map": {...}}}``.

Only the ``map`` factory is built; ``cachedNamespace`` (jdbc/uri) and every other type is refused
with a 400 naming it. An update must carry a newer ``version`` than the stored one (Druid compares
versions as strings), else 400, as Druid's ``isNewerThan`` check.
"""

from __future__ import annotations

from typing import Any

import orjson

from common.errors import InvalidInput

CONFIG_KEY = "lookupsConfig"
DEFAULT_TIER = "__default"

Container = dict[str, Any]
LookupsConfig = dict[str, dict[str, Container]]


def parse_container(lookup_id: str, raw: Any) -> Container:
    """A validated ``LookupExtractorFactoryContainer``; 400 naming the bad field."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"lookup [{lookup_id}]: the spec must be a JSON object")
    unknown = sorted(set(raw) - {"version", "lookupExtractorFactory"})
    if unknown:
        raise InvalidInput(f"lookup [{lookup_id}]: unknown field(s) {unknown}")
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise InvalidInput(f"lookup [{lookup_id}]: version must be a non-empty string")
    factory = raw.get("lookupExtractorFactory")
    if not isinstance(factory, dict):
        raise InvalidInput(f"lookup [{lookup_id}]: lookupExtractorFactory is required")
    kind = factory.get("type")
    if kind != "map":
        raise InvalidInput(
            f"lookup [{lookup_id}]: lookupExtractorFactory type [{kind}] is not supported"
            " (kdruid builds the [map] type only; cachedNamespace jdbc/uri are not built)"
        )
    extra = sorted(set(factory) - {"type", "map", "isOneToOne", "injective"})
    if extra:
        raise InvalidInput(f"lookup [{lookup_id}]: unknown map lookup field(s) {extra}")
    mapping = factory.get("map")
    if not isinstance(mapping, dict):
        raise InvalidInput(f"lookup [{lookup_id}]: map must be a JSON object")
    bad = [k for k, v in mapping.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise InvalidInput(f"lookup [{lookup_id}]: map values must be strings (key(s) {bad[:5]})")
    return {"version": version, "lookupExtractorFactory": dict(factory)}


def merge(current: LookupsConfig, update: Any) -> LookupsConfig:
    """``current`` with ``update`` (``{tier: {id: container}}``) applied, as Druid's
    ``updateLookups``: lookups not named are kept; a named one must be newer than the stored."""
    if not isinstance(update, dict):
        raise InvalidInput("the lookups config must be a JSON object of tiers")
    merged: LookupsConfig = {tier: dict(lookups) for tier, lookups in current.items()}
    for tier, lookups in update.items():
        if not isinstance(lookups, dict):
            raise InvalidInput(f"tier [{tier}]: must be a JSON object of lookups")
        target = merged.setdefault(tier, {})
        for lookup_id, raw in lookups.items():
            spec = parse_container(lookup_id, raw)
            old = target.get(lookup_id)
            if old is not None and not spec["version"] > old["version"]:
                raise InvalidInput(
                    f"Given update for lookup[{tier}]:[{lookup_id}] not newer than existing"
                    f" (version [{spec['version']}] vs [{old['version']}])"
                )
            target[lookup_id] = spec
    return merged


def decode(raw: bytes | None) -> LookupsConfig:
    if raw is None:
        return {}
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else {}


def encode(config: LookupsConfig) -> bytes:
    return orjson.dumps(config)
