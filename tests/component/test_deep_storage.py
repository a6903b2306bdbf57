"""Deep storage: push/pull/delete on a local directory and on S3 (a real moto S3 server)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from common.config import load_settings
from common.errors import InvalidInput
from common.segments.deep_storage import DeepStorage, s3_filesystem, segment_dir
from common.segments.errors import DeepStorageError
from common.segments.format import open_segment, parquet_to_ipc, write_parquet
from common.segments.intervals import Interval
from common.segments.segment import DataSegment, NumberedShardSpec
from tests.support.s3 import moto_endpoint, s3_admin  # noqa: F401  (the fixture)

DAY = Interval.parse("2024-01-01/2024-01-02")


@pytest.fixture
def segment_file(tmp_path: Path) -> Path:
    path = tmp_path / "build" / "index.parquet"
    path.parent.mkdir()
    table = pa.table({"__time": [DAY.start, DAY.start + 5], "page": ["a", "b"], "n": [1, 2]})
    write_parquet(table, path, DAY)
    return path


def make_segment(partition: int = 3) -> DataSegment:
    return DataSegment(
        data_source="wiki",
        interval=DAY,
        version="2024-01-05T00:00:00.000Z",
        dimensions=("page",),
        metrics=("n",),
        shard_spec=NumberedShardSpec(partition_num=partition, partitions=4),
    )


def round_trip(storage: DeepStorage, segment_file: Path, tmp_path: Path) -> DataSegment:
    pushed = storage.push(make_segment(), segment_file)
    assert pushed.size == segment_file.stat().st_size
    assert storage.exists(pushed.load_spec)
    dest = tmp_path / "cache" / "wiki" / "index.parquet"
    assert storage.pull(pushed.load_spec, dest) == pushed.size
    assert dest.read_bytes() == segment_file.read_bytes()
    parquet_to_ipc(dest, dest.with_suffix(".arrow"))
    with open_segment(dest.with_suffix(".arrow")) as seg:
        assert seg.table.column("page").to_pylist() == ["a", "b"]
    storage.delete(pushed.load_spec)
    assert not storage.exists(pushed.load_spec)
    storage.delete(pushed.load_spec)  # idempotent
    with pytest.raises(DeepStorageError, match="not found"):
        storage.pull(pushed.load_spec, tmp_path / "again.parquet")
    return pushed


def test_layout() -> None:
    assert segment_dir(make_segment()) == (
        "wiki/2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z/2024-01-05T00:00:00.000Z/3"
    )
    with pytest.raises(InvalidInput):
        segment_dir(make_segment().model_copy(update={"version": "../../etc"}))


def test_local_deep_storage(tmp_path: Path, segment_file: Path) -> None:
    settings = load_settings(
        "historical",
        properties={"druid.storage.storageDirectory": str(tmp_path / "deep")},
        environ={},
    )
    storage = DeepStorage.from_settings(settings)
    pushed = storage.push(make_segment(), segment_file)
    expected = tmp_path / "deep" / segment_dir(make_segment()) / "index.parquet"
    assert pushed.load_spec == {"type": "local", "path": str(expected)}
    assert pushed.to_json()["loadSpec"]["type"] == "local"
    assert expected.exists()
    storage.delete(pushed.load_spec)
    assert not (tmp_path / "deep" / "wiki").exists()  # empty directories pruned
    assert (tmp_path / "deep").exists()
    round_trip(storage, segment_file, tmp_path)
    assert list((tmp_path / "cache" / "wiki").glob("*.tmp")) == []


def test_bad_inputs(tmp_path: Path, segment_file: Path) -> None:
    storage = DeepStorage("local", storage_directory=str(tmp_path / "deep"))
    with pytest.raises(DeepStorageError):
        storage.push(make_segment(), tmp_path / "missing.parquet")
    for spec in ({}, {"type": "hdfs", "path": "x"}, {"type": "local"}, {"type": "s3_zip"}):
        with pytest.raises(InvalidInput):
            storage.pull(spec, tmp_path / "x")
    with pytest.raises(DeepStorageError, match="no S3"):
        storage.pull({"type": "s3", "bucket": "b", "key": "k"}, tmp_path / "x")
    with pytest.raises(InvalidInput):
        DeepStorage("s3")
    with pytest.raises(InvalidInput):
        DeepStorage("hdfs")


def test_s3_deep_storage(
    tmp_path: Path,
    segment_file: Path,
    moto_endpoint: str,  # noqa: F811
) -> None:
    settings = load_settings(
        "historical",
        properties={
            "druid.storage.type": "s3",
            "druid.storage.bucket": "druid-deep",
            "druid.storage.baseKey": "prod/segments",
            "druid.s3.accessKey": "test",
            "druid.s3.secretKey": "test",
            "druid.s3.endpoint.url": moto_endpoint,
            "druid.s3.endpoint.signingRegion": "us-east-1",
            "druid.s3.enablePathStyleAccess": "true",
        },
        environ={},
    )
    s3_admin(moto_endpoint).create_dir("druid-deep")
    storage = DeepStorage.from_settings(settings)
    pushed = storage.push(make_segment(), segment_file)
    key = f"prod/segments/{segment_dir(make_segment())}/index.parquet"
    assert pushed.load_spec == {"type": "s3", "bucket": "druid-deep", "key": key}
    info = s3_filesystem(settings).get_file_info(f"druid-deep/{key}")
    assert info.size == segment_file.stat().st_size
    storage.delete(pushed.load_spec)
    round_trip(storage, segment_file, tmp_path)
    with pytest.raises(DeepStorageError):
        storage.pull({"type": "s3", "bucket": "no-such-bucket", "key": "k"}, tmp_path / "x")
