"""The ``index_parallel`` / ``index`` task JSON validated into what the runner needs.

Druid's ``ParallelIndexIngestionSpec``: ``dataSchema`` (the streaming one, ``common.ingest.spec``),
``ioConfig`` (``inputSource``, ``inputFormat``, ``appendToExisting``, ``dropExisting``) and
``tuningConfig`` (``partitionsSpec`` dynamic or hashed, ``maxNumConcurrentSubTasks``, parse
exception limits, ``awaitSegmentAvailabilityTimeoutMillis``). Pure: bad input is an
``InvalidInput`` (HTTP 400) naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from common.config import JAVA_INT_MAX, parse_bytes
from common.errors import InvalidInput, describe_validation_errors
from common.ingest.batch_input.s3 import S3InputSource
from common.ingest.spec import (
    DataSchema,
    DelimitedInputFormat,
    JsonInputFormat,
    parse_data_schema,
)
from common.segments.intervals import Interval

BATCH_TASK_TYPES = ("index_parallel", "index", "single_phase_sub_task")
DEFAULT_MAX_ROWS_PER_SEGMENT = 5_000_000
DEFAULT_MAX_TOTAL_ROWS = 20_000_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class InlineInputSource(_Model):
    type: Literal["inline"]
    data: str


class LocalInputSource(_Model):
    type: Literal["local"]
    baseDir: str | None = None
    filter: str | None = None
    files: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> LocalInputSource:
        if not self.baseDir and not self.files:
            raise ValueError("At least one of baseDir or files must be specified")
        if self.baseDir and not self.filter:
            raise ValueError('filter is required with baseDir (for example "*")')
        return self


class HttpInputSource(_Model):
    type: Literal["http"]
    uris: list[str] = Field(min_length=1)
    httpAuthenticationUsername: str | None = None
    httpAuthenticationPassword: str | dict[str, Any] | None = None


class DruidInputSource(_Model):
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)
    type: Literal["druid"]
    dataSource: str = Field(min_length=1)
    interval: Interval


class ParquetInputFormat(_Model):
    type: Literal["parquet"]
    binaryAsString: bool = False


InputSource = Annotated[
    InlineInputSource | LocalInputSource | HttpInputSource | S3InputSource | DruidInputSource,
    Field(discriminator="type"),
]
INPUT_SOURCE_TYPES = ("inline", "local", "http", "s3", "druid")
#: Druid's input sources from extensions kdruid does not have (named in the 400).
_NOT_BUILT = {
    "google": "druid-google-extensions",
    "azure": "druid-azure-extensions",
    "azureStorage": "druid-azure-extensions",
    "hdfs": "druid-hdfs-storage",
    "oss": "aliyun-oss-extensions",
    "delta": "druid-deltalake-extensions",
    "iceberg": "druid-iceberg-extensions",
    "sql": "a SQL input source extension",
    "combining": "the combining input source",
}
BatchInputFormat = Annotated[
    JsonInputFormat | DelimitedInputFormat | ParquetInputFormat, Field(discriminator="type")
]


class IoConfig(_Model):
    type: str | None = None
    inputSource: InputSource
    inputFormat: BatchInputFormat | None = None
    appendToExisting: bool = False
    dropExisting: bool = False


class DynamicPartitions(_Model):
    type: Literal["dynamic"]
    maxRowsPerSegment: int = Field(default=DEFAULT_MAX_ROWS_PER_SEGMENT, ge=1)
    maxTotalRows: int = Field(default=DEFAULT_MAX_TOTAL_ROWS, ge=1)


class HashedPartitions(_Model):
    type: Literal["hashed"]
    numShards: int | None = Field(default=None, ge=1)
    targetRowsPerSegment: int | None = Field(default=None, ge=1)
    maxRowsPerSegment: int | None = Field(default=None, ge=1)
    partitionDimensions: list[str] = []
    partitionFunction: Literal["murmur3_32_abs"] = "murmur3_32_abs"

    @model_validator(mode="after")
    def _check(self) -> HashedPartitions:
        target = self.targetRowsPerSegment or self.maxRowsPerSegment
        if self.numShards is not None and target is not None:
            raise ValueError("Cannot have both numShards and targetRowsPerSegment")
        return self

    @property
    def target_rows(self) -> int:
        return self.targetRowsPerSegment or self.maxRowsPerSegment or DEFAULT_MAX_ROWS_PER_SEGMENT


PartitionsSpec = Annotated[DynamicPartitions | HashedPartitions, Field(discriminator="type")]


class TuningConfig(_Model):
    type: str | None = None
    partitionsSpec: PartitionsSpec | None = None
    maxRowsPerSegment: int | None = Field(default=None, ge=1)
    maxTotalRows: int | None = Field(default=None, ge=1)
    forceGuaranteedRollup: bool = False
    maxNumConcurrentSubTasks: int = Field(default=1, ge=1)
    #: Tries per split when running sub-tasks (Druid's ``ParallelIndexTuningConfig``).
    maxRetry: int = Field(default=3, ge=0)
    maxParseExceptions: int = JAVA_INT_MAX
    maxSavedParseExceptions: int = 0
    logParseExceptions: bool = False
    maxRowsInMemory: int = Field(default=1_000_000, ge=1)
    #: Bytes of Arrow buffers held before an intermediate persist: 0 is the peon's default (1/6
    #: of the machine's memory), negative means no limit. A number or ``500m``, ``1GiB``.
    maxBytesInMemory: Annotated[int, BeforeValidator(parse_bytes)] = 0
    awaitSegmentAvailabilityTimeoutMillis: int = Field(default=0, ge=0)

    def partitions(self) -> DynamicPartitions | HashedPartitions:
        if self.partitionsSpec is not None:
            return self.partitionsSpec
        return DynamicPartitions(
            type="dynamic",
            maxRowsPerSegment=self.maxRowsPerSegment or DEFAULT_MAX_ROWS_PER_SEGMENT,
            maxTotalRows=self.maxTotalRows or DEFAULT_MAX_TOTAL_ROWS,
        )


@dataclass(frozen=True)
class BatchTaskSpec:
    id: str
    type: str
    group_id: str
    data_source: str
    schema: DataSchema
    io: IoConfig
    tuning: TuningConfig
    context: dict[str, Any]
    #: Set for a ``single_phase_sub_task``: the ``index_parallel`` task it works for.
    supervisor_task_id: str | None = None
    #: A sub-task's ``subtaskSpecId`` (the same for every try of one split): its segment
    #: allocation sequence, so a retry gets the ids of the try before (Druid's lineage-based
    #: allocation). None for an older sub-task without it.
    subtask_spec_id: str | None = None

    @property
    def input_format(self) -> JsonInputFormat | DelimitedInputFormat | ParquetInputFormat | None:
        return self.io.inputFormat

    @property
    def partitions(self) -> DynamicPartitions | HashedPartitions:
        return self.tuning.partitions()


def _invalid(what: str, exc: ValidationError) -> InvalidInput:
    text = describe_validation_errors(exc.errors()).replace("Value error, ", "")
    return InvalidInput(f"Invalid {what}: {text}")


def _spec_part(task: dict[str, Any], key: str) -> Any:
    """Druid accepts the parts at the top level or under ``spec`` (the documented form)."""
    spec = task.get("spec")
    if isinstance(spec, dict) and key in spec:
        return spec[key]
    return task.get(key)


def parse_batch_task(task: Any) -> BatchTaskSpec:
    """Validate an ``index_parallel`` / ``index`` task; ``InvalidInput`` naming what is wrong."""
    if not isinstance(task, dict):
        raise InvalidInput("Task must be a JSON object")
    task_type = task.get("type")
    if task_type not in BATCH_TASK_TYPES:
        raise InvalidInput(f"task type [{task_type}] is not a batch ingestion task")
    schema = parse_data_schema(_spec_part(task, "dataSchema"))
    raw_io = _spec_part(task, "ioConfig")
    if not isinstance(raw_io, dict):
        raise InvalidInput("Invalid task: 'spec.ioConfig' is required and must be an object")
    _check_input_source_type(raw_io.get("inputSource"))
    try:
        io = IoConfig.model_validate(raw_io)
    except ValidationError as e:
        raise _invalid("ioConfig", e) from None
    try:
        tuning = TuningConfig.model_validate(_spec_part(task, "tuningConfig") or {})
    except ValidationError as e:
        raise _invalid("tuningConfig", e) from None
    if io.inputFormat is None and io.inputSource.type != "druid":
        raise InvalidInput("Invalid ioConfig: 'inputFormat' is required for this inputSource")
    partitions = tuning.partitions()
    if isinstance(partitions, HashedPartitions):
        if not tuning.forceGuaranteedRollup:
            raise InvalidInput(
                "Invalid tuningConfig: partitionsSpec [hashed] requires forceGuaranteedRollup=true"
            )
        if io.appendToExisting:
            raise InvalidInput(
                "Invalid ioConfig: perfect rollup (hashed partitions) cannot be guaranteed when "
                "appending to existing dataSources"
            )
    elif tuning.forceGuaranteedRollup:
        raise InvalidInput(
            "Invalid tuningConfig: forceGuaranteedRollup=true needs partitionsSpec [hashed]"
        )
    if io.dropExisting:
        if io.appendToExisting:
            raise InvalidInput(
                "Invalid ioConfig: dropExisting=true is not compatible with appendToExisting=true"
            )
        if not schema.granularitySpec.intervals:
            raise InvalidInput(
                "Invalid ioConfig: dropExisting=true needs granularitySpec.intervals"
            )
    task_id = task.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidInput("task id is required")
    context = task.get("context") or {}
    if not isinstance(context, dict):
        raise InvalidInput("Invalid task: 'context' must be an object")
    return BatchTaskSpec(
        id=task_id,
        type=str(task_type),
        group_id=str(task.get("groupId") or task_id),
        data_source=schema.dataSource,
        schema=schema,
        io=io,
        tuning=tuning,
        context=context,
        supervisor_task_id=_supervisor_task_id(task),
        subtask_spec_id=spec_id if isinstance(spec_id := task.get("subtaskSpecId"), str) else None,
    )


def _check_input_source_type(source: Any) -> None:
    if not isinstance(source, dict):
        return  # missing or not an object: the model's validation names it
    kind = source.get("type")
    if kind in INPUT_SOURCE_TYPES:
        return
    known = ", ".join(INPUT_SOURCE_TYPES)
    if kind in _NOT_BUILT:
        raise InvalidInput(
            f"Invalid ioConfig: inputSource type [{kind}] is not supported: kdruid does not "
            f"have {_NOT_BUILT[kind]} (input sources: {known})"
        )
    raise InvalidInput(f"Invalid ioConfig: inputSource type [{kind}] is unknown ({known})")


def _supervisor_task_id(task: dict[str, Any]) -> str | None:
    if task.get("type") != "single_phase_sub_task":
        return None
    sup = task.get("supervisorTaskId")
    if not isinstance(sup, str) or not sup:
        raise InvalidInput("Invalid task: single_phase_sub_task needs 'supervisorTaskId'")
    url = (task.get("context") or {}).get("supervisorUrl")
    if not isinstance(url, str) or not url.startswith("http"):
        raise InvalidInput("Invalid task: single_phase_sub_task needs context.supervisorUrl")
    return sup
