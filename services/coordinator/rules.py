"""Druid's retention rules (``loadForever``, ``dropByPeriod``...) as validated models.

Rules are evaluated in order, first match wins; a datasource with no matching rule falls back to
the ``_default`` rules (seeded with ``loadForever {"_default_tier": 2}``). JSON as Druid's
``server/.../coordinator/rules/``: polymorphic on ``type``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from common.errors import InvalidInput, describe_validation_errors
from common.segments.intervals import Interval
from common.segments.period import Period

DEFAULT_TIER = "_default_tier"
DEFAULT_REPLICANTS = 2


class _Rule(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")


class _LoadRule(_Rule):
    tiered_replicants: dict[str, int] | None = Field(default=None, alias="tieredReplicants")
    use_default_tier_for_null: bool = Field(default=True, alias="useDefaultTierForNull")

    @field_validator("tiered_replicants")
    @classmethod
    def _non_negative(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for tier, n in (value or {}).items():
            if n < 0:
                raise ValueError(f"replicants for tier [{tier}] must be >= 0, got {n}")
        return value

    def replicants(self) -> dict[str, int]:
        """Druid: null tieredReplicants is {_default_tier: 2}, or {} without the default tier."""
        if self.tiered_replicants is not None:
            return dict(self.tiered_replicants)
        return {DEFAULT_TIER: DEFAULT_REPLICANTS} if self.use_default_tier_for_null else {}


def _period(value: Any) -> str:
    Period.parse(str(value))
    return str(value)


PeriodText = Annotated[str, AfterValidator(_period), Field(description="ISO 8601 period, e.g. P1M")]


class LoadForever(_LoadRule):
    type: Literal["loadForever"]


class LoadByInterval(_LoadRule):
    type: Literal["loadByInterval"]
    interval: Interval


class LoadByPeriod(_LoadRule):
    type: Literal["loadByPeriod"]
    period: PeriodText
    include_future: bool = Field(default=True, alias="includeFuture")


class DropForever(_Rule):
    type: Literal["dropForever"]


class DropByInterval(_Rule):
    type: Literal["dropByInterval"]
    interval: Interval


class DropByPeriod(_Rule):
    type: Literal["dropByPeriod"]
    period: PeriodText
    include_future: bool = Field(default=True, alias="includeFuture")


class DropBeforeByPeriod(_Rule):
    type: Literal["dropBeforeByPeriod"]
    period: PeriodText


class BroadcastForever(_Rule):
    type: Literal["broadcastForever"]


class BroadcastByInterval(_Rule):
    type: Literal["broadcastByInterval"]
    interval: Interval


class BroadcastByPeriod(_Rule):
    type: Literal["broadcastByPeriod"]
    period: PeriodText
    include_future: bool = Field(default=True, alias="includeFuture")


Rule = Annotated[
    LoadForever
    | LoadByInterval
    | LoadByPeriod
    | DropForever
    | DropByInterval
    | DropByPeriod
    | DropBeforeByPeriod
    | BroadcastForever
    | BroadcastByInterval
    | BroadcastByPeriod,
    Field(discriminator="type"),
]

_RULES = TypeAdapter(list[Rule])


def parse_rules(raw: Any) -> list[Rule]:
    """Validate a JSON list of rules; ``InvalidInput`` (400) naming the bad rule otherwise."""
    if not isinstance(raw, list):
        raise InvalidInput("rules must be a JSON list of rule objects")
    try:
        return _RULES.validate_python(raw)
    except ValidationError as exc:
        raise InvalidInput(f"invalid rules: {describe_validation_errors(exc.errors())}") from None


def rules_json(rules: list[Rule]) -> list[dict[str, Any]]:
    return [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in rules]
