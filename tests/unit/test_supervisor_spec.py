"""Kafka supervisor spec: Druid's two shapes, defaults, and 400s naming the bad field."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import InvalidInput
from services.overlord.supervisor.spec import (
    check_spec_update,
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
        (wrapped(topic=None, topicPattern="wi(ki"), "ioConfig.topicPattern"),
        (wrapped(topic=None, topicPattern=""), "ioConfig.topicPattern"),
        (wrapped(topic=None), "ioConfig.topic"),
        (wrapped(emitTimeLagMetrics=True), "ioConfig.emitTimeLagMetrics"),
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


def test_topic_pattern_is_the_stream_of_a_multi_topic_supervisor() -> None:
    spec = parse_supervisor_spec(wrapped(topic=None, topicPattern="metrics-.*"))
    assert spec.io.multi_topic and spec.io.stream == "metrics-.*" and spec.io.topic is None
    assert spec.to_json()["ioConfig"]["topicPattern"] == "metrics-.*"
    single = parse_supervisor_spec(wrapped())
    assert not single.io.multi_topic and single.io.stream == "wiki"
    # kdruid's repartitionTransitionDuration (Druid's fixed PT2M for Kafka by default)
    assert single.chat.repartition_transition == 120
    body = wrapped()
    body["spec"]["tuningConfig"] = {"type": "kafka", "repartitionTransitionDuration": "PT5S"}
    assert parse_supervisor_spec(body).chat.repartition_transition == 5


def test_a_running_supervisor_keeps_its_stream() -> None:
    """Druid's validateSpecUpdateTo: neither another topic nor a switch to or from a pattern."""
    single = parse_supervisor_spec(wrapped())
    check_spec_update(single, parse_supervisor_spec(wrapped(taskCount=2)))  # same stream: fine
    with pytest.raises(InvalidInput) as err:
        check_spec_update(single, parse_supervisor_spec(wrapped(topic=None, topicPattern="wiki")))
    assert err.value.message.startswith(
        "Update of the input source stream from [(single-topic) wiki] to [(multi-topic) wiki] "
        "is not supported for a running supervisor."
    )
    with pytest.raises(InvalidInput) as err:
        check_spec_update(single, parse_supervisor_spec(wrapped(topic="other")))
    assert "from [wiki] to [other]" in err.value.message
    assert "(1) Suspend this supervisor, reset its offsets and then terminate it." in (
        err.value.message
    )


def test_suspended_flag_and_tombstone() -> None:
    body = wrapped()
    body["suspended"] = True
    spec = parse_supervisor_spec(body)
    assert spec.suspended and not spec.with_suspended(False).suspended
    tomb = noop_spec("wiki", ["wiki"])
    assert tomb["type"] == "NoopSupervisorSpec" and is_tombstone(tomb)
    assert not is_tombstone(spec.to_json())
