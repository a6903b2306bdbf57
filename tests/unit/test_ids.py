"""Druid's id rule (``IdUtils.validateId``) and the encodings ids travel in."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from common.errors import InvalidInput
from common.ids import header_value, id_problem, url_id, validate_id
from common.ingest.spec import parse_data_schema
from services.overlord.supervisor.spec import parse_supervisor_spec
from services.overlord.tasks.model import validate_task

DRUID_IT_NAME = "wiki %Россия 한국 中国!?"


@pytest.mark.parametrize(
    "value",
    [
        "wikipedia",
        DRUID_IT_NAME,
        "alpha123..*~!@#&%^&*()-+ Россия\\ 한국 中国!",
        "a b",  # the space is the one whitespace allowed
        "x\x1f",  # Druid's bounds are exclusive: 31, 127 and 159 pass
        "x\x7f\x9f",
        "\uf8ff",
        "a:b?c#d[e]",
    ],
)
def test_druid_accepts(value: str) -> None:
    assert validate_id("dataSource", value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be null"),
        (None, "must not be null"),
        (".hidden", "cannot start with '.'"),
        ("a/b", "cannot contain '/'"),
        ("a\tb", "illegal whitespace characters.  Only space is allowed."),
        ("a\nb", "illegal whitespace"),
        ("a\x01b", "illegal UTF8 character [#1] at position [1]"),
        ("a\x80", "illegal UTF8 character [#128] at position [1]"),
        ("a\ue000", "illegal UTF8 character [#57344]"),  # private use
        ("a\ufff5", "illegal UTF8 character"),
        ("a\U0001f600", "illegal UTF8 character"),  # beyond the BMP (an emoji)
        ("a\x00", "illegal UTF8 character [#0]"),  # kdruid: no store can hold NUL
    ],
)
def test_druid_refuses(value: str | None, message: str) -> None:
    problem = id_problem("dataSource", value)
    assert problem is not None and message in problem
    assert problem.startswith("Invalid value for field [dataSource]")
    with pytest.raises(InvalidInput):
        validate_id("dataSource", value)


def test_url_id_is_one_path_segment_that_decodes_back() -> None:
    enc = url_id(DRUID_IT_NAME)
    assert enc.isascii() and "/" not in enc and "?" not in enc and " " not in enc
    assert "%25" in enc  # the percent sign itself is encoded
    assert unquote(enc) == DRUID_IT_NAME


def test_header_value_is_ascii() -> None:
    assert header_value("sql-123") == "sql-123"
    enc = header_value("q-" + DRUID_IT_NAME)
    assert enc.isascii()
    enc.encode("latin-1")


SCHEMA = {"dataSource": DRUID_IT_NAME, "timestampSpec": {"column": "ts"}}


def kafka_task(task_id: str) -> dict[str, object]:
    return {
        "type": "index_kafka",
        "id": task_id,
        "dataSchema": SCHEMA,
        "ioConfig": {
            "topic": "t",
            "inputFormat": {"type": "json"},
            "consumerProperties": {"bootstrap.servers": "k:9092"},
            "startSequenceNumbers": {
                "type": "start",
                "stream": "t",
                "partitionSequenceNumberMap": {},
            },
            "endSequenceNumbers": {"type": "end", "stream": "t", "partitionSequenceNumberMap": {}},
        },
    }


def test_the_names_druid_accepts_are_accepted_everywhere() -> None:
    assert parse_data_schema(SCHEMA).dataSource == DRUID_IT_NAME
    task_id = f"index_kafka_{DRUID_IT_NAME}_0123456789abcde_abcdefgh"
    assert validate_task(kafka_task(task_id))["id"] == task_id
    sup = parse_supervisor_spec(
        {
            "type": "kafka",
            "spec": {
                "dataSchema": SCHEMA,
                "ioConfig": {
                    "topic": "t",
                    "inputFormat": {"type": "json"},
                    "consumerProperties": {"bootstrap.servers": "k:9092"},
                },
            },
        }
    )
    assert sup.id == DRUID_IT_NAME


def test_bad_names_are_refused_with_druids_message() -> None:
    with pytest.raises(InvalidInput, match=r"field \[dataSource\].*cannot contain '/'"):
        parse_data_schema({**SCHEMA, "dataSource": "a/b"})
    with pytest.raises(InvalidInput, match=r"field \[Task ID\].*illegal whitespace"):
        validate_task(kafka_task("a\tb"))
