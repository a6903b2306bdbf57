"""Auto-compaction configuration as Druid keeps it: ``DruidCompactionConfig`` in ``druid_config``
under ``coordinator.compaction.config``, one ``DataSourceCompactionConfig`` per datasource.

Wire shapes (``/druid/coordinator/v1/config/compaction``)::

    {"compactionConfigs": [DataSourceCompactionConfig...], "compactionTaskSlotRatio": 0.1,
     "maxCompactionTaskSlots": 2147483647, "useAutoScaleSlots": false, "engine": "native"}

    {"dataSource", "taskPriority": 25, "inputSegmentSizeBytes": 100000000000000,
     "maxRowsPerSegment"?, "skipOffsetFromLatest": "P1D", "tuningConfig"?, "taskContext"?,
     "granularitySpec"?, "dimensionsSpec"?, "metricsSpec"?, "transformSpec"?, "ioConfig"?,
     "engine"?}
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.config import JAVA_INT_MAX
from common.errors import InvalidInput, describe_validation_errors
from common.metadata import MetadataStore
from common.segments.granularity import Granularity
from common.segments.period import Period

CONFIG_KEY = "coordinator.compaction.config"
#: Druid's ``DataSourceCompactionConfig`` defaults.
DEFAULT_PRIORITY = 25
DEFAULT_INPUT_SEGMENT_SIZE_BYTES = 100_000_000_000_000
DEFAULT_SKIP_OFFSET = "P1D"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class GranularitySpec(_Model):
    """``UserCompactionTaskGranularityConfig``."""

    segment_granularity: Granularity | None = Field(default=None, alias="segmentGranularity")
    query_granularity: Granularity | None = Field(default=None, alias="queryGranularity")
    rollup: bool | None = None


class IOConfig(_Model):
    drop_existing: bool = Field(default=False, alias="dropExisting")


class DataSourceCompactionConfig(_Model):
    data_source: str = Field(alias="dataSource", min_length=1)
    task_priority: int = Field(default=DEFAULT_PRIORITY, alias="taskPriority")
    input_segment_size_bytes: int = Field(
        default=DEFAULT_INPUT_SEGMENT_SIZE_BYTES, alias="inputSegmentSizeBytes", gt=0
    )
    max_rows_per_segment: int | None = Field(default=None, alias="maxRowsPerSegment", gt=0)
    skip_offset_from_latest: str = Field(default=DEFAULT_SKIP_OFFSET, alias="skipOffsetFromLatest")
    tuning_config: dict[str, Any] | None = Field(default=None, alias="tuningConfig")
    task_context: dict[str, Any] | None = Field(default=None, alias="taskContext")
    granularity_spec: GranularitySpec | None = Field(default=None, alias="granularitySpec")
    dimensions_spec: dict[str, Any] | None = Field(default=None, alias="dimensionsSpec")
    metrics_spec: list[dict[str, Any]] | None = Field(default=None, alias="metricsSpec")
    transform_spec: dict[str, Any] | None = Field(default=None, alias="transformSpec")
    io_config: IOConfig | None = Field(default=None, alias="ioConfig")
    engine: Literal["native"] | None = None
    projections: list[dict[str, Any]] | None = None

    @field_validator("skip_offset_from_latest")
    @classmethod
    def _period(cls, value: str) -> str:
        Period.parse(value)
        return value

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class DruidCompactionConfig(_Model):
    compaction_configs: list[DataSourceCompactionConfig] = Field(
        default_factory=list, alias="compactionConfigs"
    )
    compaction_task_slot_ratio: float = Field(
        default=0.1, alias="compactionTaskSlotRatio", ge=0, le=1
    )
    max_compaction_task_slots: int = Field(
        default=JAVA_INT_MAX, alias="maxCompactionTaskSlots", ge=0
    )
    use_auto_scale_slots: bool = Field(default=False, alias="useAutoScaleSlots")
    engine: Literal["native"] = "native"

    def for_data_source(self, data_source: str) -> DataSourceCompactionConfig | None:
        return next((c for c in self.compaction_configs if c.data_source == data_source), None)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def parse_datasource_config(raw: Any) -> DataSourceCompactionConfig:
    """A ``DataSourceCompactionConfig`` from a request body; 400 naming the bad field."""
    try:
        return DataSourceCompactionConfig.model_validate(raw)
    except ValidationError as exc:
        detail = describe_validation_errors(exc.errors())
        raise InvalidInput(f"invalid compaction config: {detail}") from None


async def load(store: MetadataStore) -> DruidCompactionConfig:
    raw = await store.get_config(CONFIG_KEY)
    if raw is None:
        return DruidCompactionConfig()
    return DruidCompactionConfig.model_validate(orjson.loads(raw))


async def save(store: MetadataStore, config: DruidCompactionConfig) -> None:
    await store.set_config(CONFIG_KEY, orjson.dumps(config.to_json()))
