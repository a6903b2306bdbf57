"""The pull of coordinator-owned state shared by the security cache and the lookups."""

from __future__ import annotations

import asyncio

import pytest

from common.auth.sync import from_any_coordinator


def test_the_first_coordinator_that_answers_wins() -> None:
    asked: list[str] = []

    async def fetch(url: str) -> None:
        asked.append(url)
        if url == "http://a":
            raise ConnectionError("down")

    asyncio.run(from_any_coordinator(lambda: ["http://a", "http://b", "http://c"], fetch))
    assert asked == ["http://a", "http://b"]


def test_no_coordinator_or_none_answering_is_an_error() -> None:
    async def fail(url: str) -> None:
        raise ConnectionError(f"{url} down")

    with pytest.raises(RuntimeError, match="no coordinator discovered yet"):
        asyncio.run(from_any_coordinator(list, fail))
    with pytest.raises(RuntimeError, match="no coordinator answered: http://b down"):
        asyncio.run(from_any_coordinator(lambda: ["http://a", "http://b"], fail))
