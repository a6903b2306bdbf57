"""Segment change requests, Druid's ``DataSegmentChangeRequest`` JSON (polymorphic on ``action``).

``load`` and ``drop`` carry the ``DataSegment`` fields unwrapped into the same object; ``noop`` is
``{"action": "noop"}``. Unknown actions (e.g. Druid's ``schema``) are read as noops so a newer
server never breaks an older reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from common.errors import InvalidInput
from common.segments.segment import DataSegment

Action = Literal["load", "drop", "noop"]


@dataclass(frozen=True)
class SegmentChangeRequest:
    action: Action
    segment: DataSegment | None = None

    @classmethod
    def load(cls, segment: DataSegment) -> SegmentChangeRequest:
        return cls("load", segment)

    @classmethod
    def drop(cls, segment: DataSegment) -> SegmentChangeRequest:
        return cls("drop", segment)

    def to_json(self) -> dict[str, Any]:
        if self.segment is None:
            return {"action": self.action}
        return {"action": self.action, **self.segment.to_json()}

    @classmethod
    def from_json(cls, raw: Any) -> SegmentChangeRequest:
        """Parse one request; ``InvalidInput`` (400) when it is malformed."""
        if not isinstance(raw, dict):
            raise InvalidInput("a segment change request must be a JSON object")
        action = raw.get("action")
        if action not in ("load", "drop"):
            if action is None:
                raise InvalidInput("segment change request has no 'action'")
            return cls("noop")
        body = {k: v for k, v in raw.items() if k != "action"}
        try:
            segment = DataSegment.from_json(body)
        except ValueError as exc:
            raise InvalidInput(f"invalid segment in {action} request: {exc}") from None
        return cls(action, segment)

    def __hash__(self) -> int:
        return hash((self.action, self.segment.id if self.segment else None))
