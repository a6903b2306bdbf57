"""The supervisor's pure decisions: groups, start offsets, checkpoints, rollover, naming, lag,
states and the status report."""

from __future__ import annotations

import random
from typing import Any

from services.overlord.supervisor import decisions, state
from services.overlord.supervisor.groups import Group, TaskData, build_report
from services.overlord.supervisor.spec import parse_supervisor_spec
from services.overlord.supervisor.taskview import FAILED, SUCCESS, status_code, view
from services.overlord.tasks.model import Location

LONG_MAX = 9223372036854775807


def spec(**io: Any) -> Any:
    return parse_supervisor_spec(
        {
            "type": "kafka",
            "id": "sup",
            "dataSchema": {"dataSource": "wiki", "timestampSpec": {"column": "ts"}},
            "ioConfig": {
                "topic": "t",
                "inputFormat": {"type": "json"},
                "consumerProperties": {"bootstrap.servers": "k:9092"},
                **io,
            },
        }
    )


def test_partitions_go_to_group_partition_mod_task_count() -> None:
    assert [decisions.task_group_id(p, 3) for p in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert decisions.partition_groups([4, 0, 1, 2, 3], 2) == {0: [0, 2, 4], 1: [1, 3]}
    assert decisions.partition_groups([0, 1], 4) == {0: [0], 1: [1]}


def test_start_offsets_prefer_previous_generation_then_committed_then_stream() -> None:
    earliest = {0: 0, 1: 0, 2: 5}
    latest = {0: 100, 1: 200, 2: 300}
    got = decisions.start_offsets([0, 1, 2], {0: 50}, {0: 40, 1: 70}, earliest, latest, False)
    assert got == {0: 50, 1: 70, 2: 300}
    got = decisions.start_offsets([0, 1, 2], {}, None, earliest, latest, True)
    assert got == {0: 0, 1: 0, 2: 5}


def test_multi_topic_partitions_group_by_topic_hash_and_new_ones_start_at_earliest() -> None:
    ids = ["clicks:1", "impressions:0", "clicks:0"]
    groups = decisions.partition_groups(ids, 2)
    assert sorted(p for ps in groups.values() for p in ps) == sorted(ids)
    for gid, ps in groups.items():
        assert all(decisions.task_group_id(p, 2) == gid for p in ps)
    # useEarliestOffset false: known partitions start at latest, a partition discovered after
    # the first look (a new topic matching the pattern) at its earliest offset
    earliest = {"clicks:0": 3, "new:0": 0}
    latest = {"clicks:0": 90, "new:0": 40}
    got = decisions.start_offsets(
        ["clicks:0", "new:0"], {}, None, earliest, latest, False, discovered_later={"new:0"}
    )
    assert got == {"clicks:0": 90, "new:0": 0}
    assert decisions.needs_earliest("new:0", False, {"new:0"})
    assert not decisions.needs_earliest("clicks:0", False, {"new:0"})


def test_multi_topic_task_json() -> None:
    s = spec(topic=None, topicPattern="metrics-.*")
    starts = {"metrics-b:0": 1, "metrics-a:2": 3}
    base = decisions.base_sequence_name(s, starts)
    task = decisions.task_json(s, 1, base, starts, {0: starts}, "abcdefgh")
    io = task["ioConfig"]
    assert io["multiTopic"] is True and io["topic"] == "metrics-.*"
    assert io["startSequenceNumbers"]["stream"] == "metrics-.*"
    assert io["startSequenceNumbers"]["partitionSequenceNumberMap"] == {
        "metrics-a:2": 3,
        "metrics-b:0": 1,
    }
    assert set(io["endSequenceNumbers"]["partitionSequenceNumberMap"]) == set(starts)
    assert task["context"]["checkpoints"] == {"0": {"metrics-a:2": 3, "metrics-b:0": 1}}
    assert decisions.offsets_from_json({"metrics-a:2": "3"}) == {"metrics-a:2": 3}
    assert decisions.offsets_from_json({"metrics-a:x": 3}) == {}
    per, total = decisions.lag({"m:0": 10, "m:1": 5}, {"m:0": 4, "m:1": 5})
    assert decisions.offsets_to_json(per) == {"m:0": 6, "m:1": 0} and total == 6


def test_checkpoint_takes_max_offset_per_partition_over_replicas() -> None:
    assert decisions.max_offsets([{0: 10, 1: 7}, {0: 12, 1: 5}, {2: 1}]) == {0: 12, 1: 7, 2: 1}
    assert decisions.max_offsets([]) == {}


def test_rollover_after_task_duration() -> None:
    assert not decisions.is_expired(1000.0, 1000.0 + 3599, 3600)
    assert decisions.is_expired(1000.0, 1000.0 + 3600, 3600)
    assert decisions.remaining_seconds(1000.0, 1500.0, 3600) == 3100
    assert decisions.remaining_seconds(1000.0, 9000.0, 3600) == 0


def test_sequence_name_is_stable_and_depends_on_offsets_and_spec() -> None:
    s = spec()
    a = decisions.base_sequence_name(s, {0: 1, 1: 2})
    assert a == decisions.base_sequence_name(s, {1: 2, 0: 1})
    assert a.startswith("index_kafka_sup_") and len(a) == len("index_kafka_sup_") + 15
    assert a != decisions.base_sequence_name(s, {0: 1, 1: 3})
    body = {k: v for k, v in s.to_json().items() if k != "spec"}
    changed = parse_supervisor_spec({**body, "dataSchema": {"dataSource": "wiki2"}})
    assert a != decisions.base_sequence_name(changed, {0: 1, 1: 2})


def test_task_json_is_the_contracts_shape() -> None:
    s = spec(taskCount=2)
    base = decisions.base_sequence_name(s, {1: 5, 3: 9})
    task = decisions.task_json(s, 1, base, {1: 5, 3: 9}, {0: {1: 5, 3: 9}}, "abcdefgh")
    assert task["type"] == "index_kafka"
    assert task["id"] == f"{base}_abcdefgh"
    assert task["groupId"] == "index_kafka_wiki"  # one lock group per datasource, as Druid
    assert task["resource"] == {"availabilityGroup": base, "requiredCapacity": 1}
    io = task["ioConfig"]
    assert io["taskGroupId"] == 1 and io["baseSequenceName"] == base
    assert io["startSequenceNumbers"]["partitionSequenceNumberMap"] == {"1": 5, "3": 9}
    assert io["endSequenceNumbers"]["partitionSequenceNumberMap"] == {"1": LONG_MAX, "3": LONG_MAX}
    assert io["consumerProperties"] == {"bootstrap.servers": "k:9092"}
    assert task["context"]["checkpoints"] == {"0": {"1": 5, "3": 9}}
    assert task["context"]["supervisorId"] == "sup"
    assert len(decisions.random_suffix(random.Random(1))) == 8


def test_lag_math() -> None:
    per, total = decisions.lag({0: 100, 1: 50, 2: 7}, {0: 90, 1: 50, 2: 9})
    assert per == {0: 10, 1: 0, 2: 0} and total == 10
    positions = decisions.reading_positions([{0: 80}, {0: 90, 1: 40}], {0: 10, 1: 5, 2: 3})
    assert positions == {0: 90, 1: 40, 2: 3}


def test_state_machine_first_run_and_health() -> None:
    m = state.StateManager()
    assert (m.state, m.detailed_state, m.healthy) == ("PENDING", "PENDING", True)
    m.begin_step(state.CONNECTING_TO_STREAM)
    assert (m.state, m.detailed_state) == ("PENDING", "CONNECTING_TO_STREAM")
    for _ in range(3):
        m.record_error(RuntimeError("no broker"), 0.0, stream=True)
        m.run_finished(ok=False)
    assert (m.state, m.detailed_state) == ("UNHEALTHY_SUPERVISOR", "UNABLE_TO_CONNECT_TO_STREAM")
    assert not m.healthy and len(m.recent_errors()) == 3
    assert m.recent_errors()[0]["streamException"] is True
    m.stream_ok()
    m.run_finished(ok=True)
    assert m.state == "UNHEALTHY_SUPERVISOR"  # three good runs are needed to recover
    m.run_finished(ok=True)
    m.run_finished(ok=True)
    assert (m.state, m.detailed_state, m.healthy) == ("RUNNING", "RUNNING", True)
    for _ in range(3):
        m.record_error(RuntimeError("gone"), 0.0, stream=True)
        m.run_finished(ok=False)
    assert m.detailed_state == "LOST_CONTACT_WITH_STREAM"


def test_state_unhealthy_tasks_and_suspended() -> None:
    m = state.StateManager()
    m.run_finished(ok=True)
    for _ in range(3):
        m.group_failed()
    assert (m.state, m.healthy) == ("UNHEALTHY_TASKS", False)
    for _ in range(3):
        m.task_succeeded()
    assert m.state == "RUNNING"
    m.suspended = True
    assert (m.state, m.detailed_state) == ("SUSPENDED", "SUSPENDED")
    m.stopping = True
    assert m.state == "STOPPING"


def test_group_bookkeeping() -> None:
    g = Group(0, {0: 5}, "base", created=100.0)
    assert g.checkpoints == {0: {0: 5}} and g.start_time() == 100.0
    g.tasks = {"a": TaskData(start_time=150.0), "b": TaskData(start_time=120.0)}
    assert g.start_time() == 120.0 and sorted(g.live()) == ["a", "b"]
    g.tasks["a"].status = FAILED
    assert not g.all_failed() and not g.succeeded()
    g.tasks["b"].status = SUCCESS
    assert g.succeeded()


def test_report_shape_and_lag() -> None:
    s = spec(taskCount=1, replicas=1, taskDuration="PT10M")
    m = state.StateManager()
    m.run_finished(ok=True)
    active = Group(0, {0: 10, 1: 20}, "b", created=1000.0)
    active.tasks["t1"] = TaskData(start_time=1000.0, current_offsets={0: 15, 1: 20})
    publishing = Group(0, {0: 0, 1: 0}, "a", created=0.0, end_offsets={0: 10, 1: 20})
    publishing.completion_deadline = 2000.0
    publishing.tasks["t0"] = TaskData()
    report = build_report(
        s, m, [0, 1], [active], [publishing], {0: 30, 1: 20}, None, 1060.0, 1060.0
    )
    assert set(report) == {"id", "generationTime", "payload"}
    p = report["payload"]
    assert p["stream"] == "t" and p["partitions"] == 2 and p["durationSeconds"] == 600
    assert p["minimumLag"] == {"0": 15, "1": 0} and p["aggregateLag"] == 15
    assert p["latestOffsets"] == {"0": 30, "1": 20}
    assert (p["state"], p["detailedState"], p["healthy"]) == ("RUNNING", "RUNNING", True)
    [t1] = p["activeTasks"]
    assert t1["type"] == "ACTIVE" and t1["remainingSeconds"] == 540
    assert t1["startingOffsets"] == {"0": 10, "1": 20} and t1["currentOffsets"] == {
        "0": 15,
        "1": 20,
    }
    assert t1["lag"] == {"0": 15, "1": 0}
    # Kafka has record lag only: the time-lag fields are null in Druid's payload, and Druid's
    # report leaves null fields out (NON_NULL), as its sample status answers show.
    assert "minimumLagMillis" not in p and "aggregateLagMillis" not in p
    assert "lagMillis" not in t1
    [t0] = p["publishingTasks"]
    assert t0["type"] == "PUBLISHING" and t0["remainingSeconds"] == 940
    assert "lag" not in t0  # no current offsets known for it

    # Before the first look at Kafka there are no offsets or lags: left out too.
    early = build_report(s, m, [], [], [], None, None, None, 1060.0)["payload"]
    for key in ("latestOffsets", "minimumLag", "aggregateLag", "offsetsLastUpdated"):
        assert key not in early
    assert early["activeTasks"] == [] and early["partitions"] == 0


def test_task_views_accept_dicts_and_objects() -> None:
    info = {
        "id": "x",
        "type": "index_kafka",
        "dataSource": "wiki",
        "payload": {"context": {"supervisorId": "sup"}},
        "status": "RUNNING",
        "location": {"host": "h", "port": 8100},
    }
    v = view(info)
    assert v.location == "http://h:8100" and v.belongs_to("sup", "other")
    assert not v.belongs_to("sup2", "wiki")
    assert view({**info, "location": {"host": None, "port": -1}}).location is None
    tls_only = {"host": "h", "port": -1, "tlsPort": 8300}
    assert view({**info, "location": tls_only}).location == "https://h:8300"
    assert view({**info, "location": Location("h", -1, 8300)}).location == "https://h:8300"
    assert status_code({"task": "x", "status": {"statusCode": "SUCCESS"}}) == "SUCCESS"
    assert status_code({"id": "x", "status": "FAILED"}) == "FAILED"
    assert status_code(None) is None


def test_tasks_waiting_for_a_slot_are_recent_errors_once_each() -> None:
    m = state.StateManager()
    m.run_finished(True)
    m.tasks_waiting({"t1": "No free task slot: 1 of 1"}, 10.0)
    m.tasks_waiting({"t1": "No free task slot: 1 of 1"}, 11.0)  # same: not repeated
    [event] = m.recent_errors()
    assert event["exceptionClass"] == "NoTaskSlot" and event["streamException"] is False
    assert event["message"] == "Task [t1] is waiting for a worker: No free task slot: 1 of 1"
    # Waiting does not make the supervisor unhealthy: it works, its tasks wait for room.
    assert (m.state, m.healthy) == ("RUNNING", True)
    m.tasks_waiting({}, 12.0)  # t1 got a slot
    m.tasks_waiting({"t1": "No free task slot: 1 of 1"}, 13.0)  # and waits again later
    assert len(m.recent_errors()) == 2


def test_message_time_bounds_follow_druids_create_new_tasks() -> None:
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert decisions.message_time_bounds(spec().io, now) == (None, None)
    s = spec(
        lateMessageRejectionPeriod="PT1H", earlyMessageRejectionPeriod="PT10M", taskDuration="PT30M"
    )
    # late: now - period; early: now + taskDuration + period
    assert decisions.message_time_bounds(s.io, now) == (
        "2023-11-14T21:13:20.000Z",
        "2023-11-14T22:53:20.000Z",
    )
    fixed = spec(lateMessageRejectionStartDateTime="2023-01-01T00:00:00Z")
    assert decisions.message_time_bounds(fixed.io, now) == ("2023-01-01T00:00:00.000Z", None)


def test_task_json_carries_message_times_and_they_change_the_sequence_name() -> None:
    s = spec(lateMessageRejectionPeriod="PT1H")
    times = decisions.message_time_bounds(s.io, 1_700_000_000.0)
    base = decisions.base_sequence_name(s, {0: 1}, *times)
    assert base != decisions.base_sequence_name(s, {0: 1})
    task = decisions.task_json(s, 0, base, {0: 1}, {0: {0: 1}}, "abcdefgh", times)
    assert task["ioConfig"]["minimumMessageTime"] == "2023-11-14T21:13:20.000Z"
    assert task["ioConfig"]["maximumMessageTime"] is None
