"""Kafka supervisor spec: Druid's two shapes, defaults, and 400s naming the bad field."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import InvalidInput
from services.overlord.supervisor.spec import (
    is_tombstone,
    noop_spec,
    parse_supervisor_spec,
)


def schema() -> dict[str, Any]:
    return {
        "dataSource": "wiki",
        "timestampSpec": {"column": "ts", "format": "iso"},
        "dimensionsSpec": {"dimensions": ["page"]},
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
    }


def io(**over: Any) -> dict[str, Any]:
    return {
        "type": "kafka",
        "topic": "wiki",
        "inputFormat": {"type": "json"},
        "consumerProperties": {"bootstrap.servers": "k:9092"},
        **over,
    }


def wrapped(**io_over: Any) -> dict[str, Any]:
    return {"type": "kafka", "spec": {"dataSchema": schema(), "ioConfig": io(**io_over)}}


def test_defaults_are_druids() -> None:
    spec = parse_supervisor_spec(wrapped())
    assert spec.id == "wiki"
    assert (spec.io.task_count, spec.io.replicas) == (1, 1)
    assert spec.io.task_duration == 3600
    assert spec.io.start_delay == 5
    assert spec.io.period == 30
    assert spec.io.use_earliest_offset is False
    assert spec.io.completion_timeout == 1800
    assert spec.chat.retries == 8 and spec.chat.http_timeout == 10
    assert (spec.chat.min_wait, spec.chat.max_wait) == (2, 10)
    out = spec.to_json()
    assert out["spec"]["ioConfig"]["taskDuration"] == "PT1H"
    assert out["ioConfig"] == out["spec"]["ioConfig"]
    assert out["tuningConfig"]["type"] == "kafka"
    assert out["suspended"] is False


def test_top_level_form_and_explicit_id() -> None:
    body = {"type": "kafka", "id": "sup1", "dataSchema": schema(), "ioConfig": io(taskCount=3)}
    spec = parse_supervisor_spec(body)
    assert spec.id == "sup1" and spec.io.task_count == 3 and spec.data_source == "wiki"
    # The normalised JSON parses back to the same spec.
    again = parse_supervisor_spec(spec.to_json())
    assert again.to_json() == spec.to_json()


def test_message_rejection_periods_are_parsed() -> None:
    io_cfg = parse_supervisor_spec(
        wrapped(lateMessageRejectionPeriod="PT1H", earlyMessageRejectionPeriod="P1D")
    ).io
    assert (io_cfg.late_rejection_period, io_cfg.early_rejection_period) == (3600, 86400)
    assert io_cfg.late_rejection_start_ms is None
    plain = parse_supervisor_spec(wrapped()).io
    assert (plain.late_rejection_period, plain.early_rejection_period) == (None, None)


def test_tuning_shortens_chat_waits() -> None:
    body = wrapped()
    body["spec"]["tuningConfig"] = {
        "type": "kafka",
        "chatRetries": 2,
        "httpTimeout": "PT1S",
        "chatRetryMinWait": "PT0.1S",
        "chatRetryMaxWait": "PT0.2S",
    }
    chat = parse_supervisor_spec(body).chat
    assert (chat.retries, chat.http_timeout, chat.min_wait, chat.max_wait) == (2, 1, 0.1, 0.2)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (wrapped(consumerProperties={}), "ioConfig.consumerProperties"),
        (wrapped(topicPattern="wi.*"), "only one of topic and topicPattern"),
        (wrapped(topic=None, topicPattern="wi.*"), "ioConfig.topicPattern"),
        (wrapped(topic=""), "ioConfig.topic"),
        (wrapped(taskCount=0), "ioConfig.taskCount"),
        (wrapped(replicas="two"), "ioConfig.replicas"),
        (wrapped(taskDuration="an hour"), "ioConfig.taskDuration"),
        (wrapped(period="PT0S"), "ioConfig.period"),
        (wrapped(useEarliestOffset="yes"), "ioConfig.useEarliestOffset"),
        (wrapped(lateMessageRejectionPeriod="soon"), "ioConfig.lateMessageRejectionPeriod"),
        (wrapped(earlyMessageRejectionPeriod="-PT1H"), "ioConfig.earlyMessageRejectionPeriod"),
        (
            wrapped(lateMessageRejectionPeriod="PT1H", lateMessageRejectionStartDateTime="2024"),
            "mutually exclusive",
        ),
        (wrapped(lateMessageRejectionStartDateTime="later"), "lateMessageRejectionStartDateTime"),
        (wrapped(inputFormat=None), "ioConfig.inputFormat"),
        (wrapped(inputFormat={"type": "avro"}), "inputFormat"),
        ({"type": "kinesis", "spec": {}}, "type"),
        ({"type": "kafka", "spec": {"ioConfig": io()}}, "dataSchema"),
        ({"type": "kafka", "spec": {"dataSchema": schema()}}, "ioConfig"),
        ({"type": "kafka", "dataSchema": {"dataSource": ""}, "ioConfig": io()}, "dataSchema"),
        ([], "JSON object"),
    ],
)
def test_bad_specs_are_400_naming_the_field(body: Any, needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_supervisor_spec(body)
    assert err.value.status_code == 400
    assert needle in err.value.message


def test_suspended_flag_and_tombstone() -> None:
    body = wrapped()
    body["suspended"] = True
    spec = parse_supervisor_spec(body)
    assert spec.suspended and not spec.with_suspended(False).suspended
    tomb = noop_spec("wiki", ["wiki"])
    assert tomb["type"] == "NoopSupervisorSpec" and is_tombstone(tomb)
    assert not is_tombstone(spec.to_json())
