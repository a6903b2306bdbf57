"""Several processes sharing one SQLite metadata file, as the quickstart's roles do.

They start together (racing to create the schema) and then increment one lease by
read + compare-and-swap; no increment may be lost and no process may fail with "locked".
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from common.config import MetadataStorageSettings
from common.metadata import MetadataStore

REPO_ROOT = str(Path(__file__).resolve().parents[2])
PROCESSES = 4
INCREMENTS = 15

WORKER = """
import asyncio, sys
from common.config import MetadataStorageSettings
from common.metadata import MetadataStore

async def main(path: str, who: str, n: int) -> None:
    settings = MetadataStorageSettings.model_validate({"type": "sqlite", "connect_uri": path})
    store = await MetadataStore.connect(settings)
    try:
        await store.create_lease("counter", "")
        done = 0
        while done < n:
            lease = await store.read_lease("counter")
            assert lease is not None
            if await store.update_lease("counter", who, lease.version):
                done += 1
        await store.upsert_node("peon", who, "{}", 1.0)
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.mark.slow
async def test_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared" / "metadata.db")
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            path,
            f"p{i}",
            str(INCREMENTS),
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        for i in range(PROCESSES)
    ]
    results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 90)
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()

    store = await MetadataStore.connect(
        MetadataStorageSettings.model_validate({"type": "sqlite", "connect_uri": path})
    )
    try:
        lease = await store.read_lease("counter")
        assert lease is not None
        assert lease.version == 1 + PROCESSES * INCREMENTS
        assert len(await store.list_nodes("peon")) == PROCESSES
        assert list((await store.get_rules()).keys()) == ["_default"]
        async with store.reading() as conn:
            rows = (await conn.execute(select(store.tables.rules.c.id))).all()
        assert len(rows) == 1  # seeded once, though every process raced to seed it
        assert len(await store.rules_history()) == 0  # seeding is not a user change
    finally:
        await store.close()
