"""SQL INSERT / REPLACE over EXTERN planned onto an index_parallel task (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.errors import InvalidInput, PlanValidationError, SqlParseError
from common.ingest.batch_input.spec import parse_batch_task
from common.ingest.meters import ParseExceptionHandler, RowIngestionMeters
from common.ingest.parser import RowParser
from common.query.sql.ingest import ALL_TIME, plan_ingest

SOURCE = json.dumps({"type": "inline", "data": "x"})
FORMAT = json.dumps({"type": "json"})
SIG = json.dumps(
    [
        {"name": "ts", "type": "string"},
        {"name": "page", "type": "string"},
        {"name": "added", "type": "long"},
        {"name": "delta", "type": "double"},
    ]
)
EXTERN = f"TABLE(EXTERN('{SOURCE}', '{FORMAT}', '{SIG}'))"


def plan(sql: str) -> dict[str, Any]:
    task = plan_ingest(sql, "query-1")
    parse_batch_task(task)  # the planned task is a valid batch task
    return task


def test_insert_projection_types_renames_and_filter() -> None:
    task = plan(
        f'INSERT INTO "wiki" SELECT TIME_PARSE("ts") AS __time, page, added AS a, '
        f"CAST(delta AS BIGINT) AS d FROM {EXTERN} "
        "WHERE page <> 'skip' AND (added >= 2 OR page IN ('x', 'y')) PARTITIONED BY DAY"
    )
    spec = task["spec"]
    schema = spec["dataSchema"]
    assert schema["dataSource"] == "wiki"
    assert schema["timestampSpec"] == {"column": "ts", "format": "iso"}
    assert schema["dimensionsSpec"]["dimensions"] == [
        {"type": "string", "name": "page"},
        {"type": "long", "name": "a"},
        {"type": "long", "name": "d"},
    ]
    assert schema["metricsSpec"] == []
    assert schema["granularitySpec"]["segmentGranularity"] == "DAY"
    assert schema["granularitySpec"]["rollup"] is False
    assert spec["ioConfig"]["appendToExisting"] is True
    assert spec["ioConfig"]["dropExisting"] is False
    assert spec["ioConfig"]["inputSource"] == {"type": "inline", "data": "x"}

    # the planned schema parses rows as the SQL says: renamed, filtered with null semantics
    batch = parse_batch_task(task)
    meters = RowIngestionMeters()
    parser = RowParser(batch.schema, batch.io.inputFormat, ParseExceptionHandler(meters))  # type: ignore[arg-type]
    lines = [
        b'{"ts": "2024-01-01T00:00:00Z", "page": "p", "added": 3, "delta": 1.0}',
        b'{"ts": "2024-01-01T00:00:00Z", "page": "skip", "added": 3, "delta": 1.0}',
        b'{"ts": "2024-01-01T00:00:00Z", "added": 3, "delta": 1.0}',
        b'{"ts": "2024-01-01T00:00:00Z", "page": "x", "added": 1, "delta": 2.0}',
        b'{"ts": "2024-01-01T00:00:00Z", "page": "q", "added": 1, "delta": 2.0}',
    ]
    rows = parser.parse_many(lines, 0)
    assert [(r.dims.get("page"), r.dims.get("a"), r.dims.get("d")) for r in rows] == [
        ("p", 3, 1),
        ("x", 1, 2),
    ]
    assert meters.thrown_away == 3


def test_replace_overwrite_where_and_all() -> None:
    task = plan(
        f"REPLACE INTO wiki OVERWRITE WHERE __time >= TIMESTAMP '2024-01-01' AND "
        f"__time < TIMESTAMP '2024-01-03' SELECT MILLIS_TO_TIMESTAMP(added) AS __time, page "
        f"FROM {EXTERN} PARTITIONED BY 'P1D'"
    )
    schema = task["spec"]["dataSchema"]
    assert schema["granularitySpec"]["intervals"] == [
        "2024-01-01T00:00:00.000Z/2024-01-03T00:00:00.000Z"
    ]
    assert schema["granularitySpec"]["segmentGranularity"] == {"type": "period", "period": "P1D"}
    assert schema["timestampSpec"] == {"column": "added", "format": "millis"}
    assert task["spec"]["ioConfig"]["dropExisting"] is True
    assert task["spec"]["ioConfig"]["appendToExisting"] is False
    task = plan(
        f"REPLACE INTO wiki OVERWRITE ALL SELECT page FROM {EXTERN} PARTITIONED BY ALL TIME"
    )
    gspec = task["spec"]["dataSchema"]["granularitySpec"]
    assert gspec["intervals"] == [ALL_TIME] and gspec["segmentGranularity"] == "ALL"
    assert task["spec"]["dataSchema"]["timestampSpec"]["missingValue"].startswith("1970-01-01")


def test_extern_named_arguments_with_extend() -> None:
    task = plan(
        f"INSERT INTO w SELECT TIME_PARSE(ts) AS __time, n FROM TABLE(EXTERN("
        f"inputSource => '{SOURCE}', inputFormat => '{FORMAT}')) EXTEND (ts VARCHAR, n BIGINT) "
        "PARTITIONED BY FLOOR(__time TO HOUR)"
    )
    schema = task["spec"]["dataSchema"]
    assert schema["dimensionsSpec"]["dimensions"] == [{"type": "long", "name": "n"}]
    assert schema["granularitySpec"]["segmentGranularity"] == "HOUR"


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        ("SELECT 1", SqlParseError, "INSERT INTO or REPLACE INTO"),
        (f"INSERT INTO w SELECT page FROM {EXTERN}", PlanValidationError, "PARTITIONED BY"),
        (
            f"INSERT INTO w SELECT page FROM {EXTERN} PARTITIONED BY DAY CLUSTERED BY page",
            PlanValidationError,
            "CLUSTERED BY",
        ),
        (
            f"INSERT INTO w SELECT page, COUNT(*) AS c FROM {EXTERN} GROUP BY page "
            "PARTITIONED BY DAY",
            PlanValidationError,
            "GROUP",
        ),
        (
            f"INSERT INTO w SELECT * FROM {EXTERN} PARTITIONED BY DAY",
            PlanValidationError,
            r"SELECT \*",
        ),
        (
            f"INSERT INTO w SELECT UPPER(page) AS p FROM {EXTERN} PARTITIONED BY DAY",
            PlanValidationError,
            "only EXTERN columns",
        ),
        (
            f"INSERT INTO w SELECT nope FROM {EXTERN} PARTITIONED BY DAY",
            PlanValidationError,
            "nope",
        ),
        ("INSERT INTO w SELECT page FROM wiki PARTITIONED BY DAY", PlanValidationError, "EXTERN"),
        (
            f"INSERT INTO w SELECT page FROM {EXTERN} PARTITIONED BY FORTNIGHT",
            PlanValidationError,
            "Invalid granularity",
        ),
        (
            f"INSERT INTO w SELECT TIME_PARSE(ts, 'yyyy') AS __time FROM {EXTERN} "
            "PARTITIONED BY DAY",
            PlanValidationError,
            "as __time",
        ),
        (
            f"INSERT INTO w SELECT page FROM {EXTERN} WHERE NOT page = 'a' PARTITIONED BY DAY",
            PlanValidationError,
            "WHERE",
        ),
        (
            f"REPLACE INTO w SELECT page FROM {EXTERN} PARTITIONED BY DAY",
            SqlParseError,
            "OVERWRITE",
        ),
        (
            f"REPLACE INTO w OVERWRITE WHERE __time >= TIMESTAMP '2024-01-01 05:00:00' AND "
            f"__time < TIMESTAMP '2024-01-02' SELECT page FROM {EXTERN} PARTITIONED BY DAY",
            PlanValidationError,
            "not aligned",
        ),
        (
            "INSERT INTO w SELECT page FROM TABLE(EXTERN('{', '{}', '[]')) PARTITIONED BY DAY",
            PlanValidationError,
            "not valid JSON",
        ),
    ],
)
def test_refusals_are_400s_naming_the_problem(
    sql: str, error: type[InvalidInput], message: str
) -> None:
    with pytest.raises(error, match=message):
        plan_ingest(sql, "query-1")
