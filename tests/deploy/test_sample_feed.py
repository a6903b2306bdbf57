"""services/sample_feed.py, the compose and kind sample feed: it keeps posting the supervisor
until the overlord takes it (following a standby's 307 to the leader), and gives up after its
deadline. (Producing to Kafka and the rows it leads to run for real in scripts/container-smoke.)"""

from __future__ import annotations

import httpx
import pytest
import respx

from services import quickstart_ingest as sample
from services import sample_feed

SUPERVISOR = "http://overlord:8090/druid/indexer/v1/supervisor"


@respx.mock
async def test_posts_until_the_overlord_takes_it_following_redirects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sample_feed.asyncio, "sleep", _no_sleep)
    leader = "http://overlord-1:8090/druid/indexer/v1/supervisor"
    route = respx.post(SUPERVISOR).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503, json={"error": "not leader yet"}),
            httpx.Response(307, headers={"Location": leader}),
        ]
    )
    at_leader = respx.post(leader).mock(return_value=httpx.Response(200, json={"id": "wikipedia"}))
    ok = await sample_feed.submit_when_ready(
        "http://overlord:8090", "kafka:9092", "wikipedia", 60.0, reset_offsets=False
    )
    assert ok and route.call_count == 3 and at_leader.call_count == 1
    posted = at_leader.calls[0].request
    assert posted.method == "POST"  # 307 keeps the method and the body
    assert (
        posted.content
        == httpx.Request(
            "POST", leader, json=sample.supervisor_spec("kafka:9092", sample.SAMPLES[0])
        ).content
    )


@respx.mock
async def test_gives_up_after_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample_feed.asyncio, "sleep", _no_sleep)
    respx.post(SUPERVISOR).mock(return_value=httpx.Response(400, json={"error": "bad spec"}))
    ok = await sample_feed.submit_when_ready(
        "http://overlord:8090", "kafka:9092", "wikipedia", 0.0, reset_offsets=False
    )
    assert not ok


def test_refuses_a_rate_that_is_not_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        sample_feed.main(["--overlord", "http://o:8090", "--kafka", "k:9092", "--rate", "0"])
    assert exc.value.code == 2
    assert "--rate must be positive" in capsys.readouterr().err


async def _no_sleep(_: float) -> None:
    return None
