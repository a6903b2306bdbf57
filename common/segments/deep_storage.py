"""Deep storage of segment files through ``pyarrow.fs``: a local directory or S3.

Layout, as Druid's default storage dir, with the ISO times kept verbatim (``:`` included)::

    <dataSource>/<start>_<end>/<version>/<partitionNum>/index.parquet

under ``druid.storage.storageDirectory`` (local) or ``s3://<bucket>/<baseKey>/`` (s3). Load specs:
``{"type": "local", "path": "/abs/.../index.parquet"}`` and
``{"type": "s3", "bucket": "...", "key": ".../index.parquet"}``. ``pull`` and ``delete`` dispatch on
the load spec's type, not on the configured storage, as Druid's loaders do.

The calls block (file and network I/O): services run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from common.config import S3Settings, Settings
from common.errors import InvalidInput
from common.segments.errors import DeepStorageError
from common.segments.isotime import format_iso
from common.segments.segment import DataSegment

SEGMENT_FILE = "index.parquet"
_COPY_BUFFER = 1 << 20


def segment_dir(segment: DataSegment) -> str:
    """``<dataSource>/<start>_<end>/<version>/<partitionNum>`` for a segment."""
    for part, what in ((segment.data_source, "dataSource"), (segment.version, "version")):
        if "/" in part or "\\" in part or part in (".", "..") or "\x00" in part:
            raise InvalidInput(f"{what} [{part}] cannot be used in a deep storage path")
    iv = segment.interval
    return (
        f"{segment.data_source}/{format_iso(iv.start)}_{format_iso(iv.end)}/"
        f"{segment.version}/{segment.partition_num}"
    )


@dataclass(frozen=True)
class S3ClientOptions:
    """How to reach S3: ``druid.s3.*``, which the ``s3`` input source may override per spec."""

    access_key: str | None = None
    secret_key: str | None = None
    #: ``scheme://host[:port]``; a bare host means https.
    endpoint_url: str | None = None
    signing_region: str | None = None
    path_style: bool = False
    #: pyarrow's ``proxy_options`` (``scheme``, ``host``, ``port``, ``username``, ``password``).
    proxy: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, s3: S3Settings) -> S3ClientOptions:
        return cls(
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            endpoint_url=s3.endpoint_url,
            signing_region=s3.endpoint_signing_region,
            path_style=s3.enable_path_style_access,
        )

    def filesystem(self) -> pafs.S3FileSystem:
        """An S3 filesystem: path-style addressing with an endpoint override or when asked."""
        kwargs: dict[str, Any] = {
            "force_virtual_addressing": not self.path_style and not self.endpoint_url,
        }
        if self.access_key and self.secret_key:
            kwargs.update(access_key=self.access_key, secret_key=self.secret_key)
        if self.endpoint_url:
            url = (
                self.endpoint_url if "://" in self.endpoint_url else f"https://{self.endpoint_url}"
            )
            parsed = urlparse(url)
            kwargs.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
        if self.signing_region:
            kwargs["region"] = self.signing_region
        if self.proxy:
            kwargs["proxy_options"] = dict(self.proxy)
        return pafs.S3FileSystem(**kwargs)


def s3_filesystem(settings: Settings) -> pafs.S3FileSystem:
    """An S3 filesystem from ``druid.s3.*`` (endpoint override, path-style unless told)."""
    return S3ClientOptions.from_settings(settings.s3).filesystem()


class DeepStorage:
    """Push, pull and delete segment files; one instance per service."""

    def __init__(
        self,
        kind: str,
        *,
        storage_directory: str = "var/druid/segments",
        bucket: str | None = None,
        base_key: str = "",
        s3: pafs.FileSystem | None = None,
    ) -> None:
        if kind not in ("local", "s3"):
            raise InvalidInput(f"Unknown deep storage type [{kind}]")
        if kind == "s3" and not bucket:
            raise InvalidInput("druid.storage.bucket is required with druid.storage.type=s3")
        self.kind = kind
        self.storage_directory = os.path.abspath(storage_directory)
        self.bucket = bucket
        self.base_key = base_key.strip("/")
        self._s3 = s3
        self._local = pafs.LocalFileSystem()

    @classmethod
    def from_settings(cls, settings: Settings) -> DeepStorage:
        st = settings.storage
        s3 = s3_filesystem(settings) if st.type == "s3" else None
        return cls(
            st.type,
            storage_directory=st.storage_directory,
            bucket=st.bucket,
            base_key=st.base_key,
            s3=s3,
        )

    # ---- API ------------------------------------------------------------------------------

    def push(self, segment: DataSegment, local_parquet_path: str | os.PathLike[str]) -> DataSegment:
        """Upload a segment file; returns the segment with ``loadSpec`` and ``size`` filled."""
        src = str(local_parquet_path)
        try:
            size = os.path.getsize(src)
        except OSError as exc:
            raise DeepStorageError(f"cannot push {segment.id}: {exc}") from exc
        rel = f"{segment_dir(segment)}/{SEGMENT_FILE}"
        if self.kind == "local":
            path = f"{self.storage_directory}/{rel}"
            self._copy(self._local, src, self._local, path, atomic=True)
            spec: dict[str, Any] = {"type": "local", "path": path}
        else:
            key = f"{self.base_key}/{rel}" if self.base_key else rel
            self._copy(self._local, src, self._s3_fs(), f"{self.bucket}/{key}", atomic=False)
            spec = {"type": "s3", "bucket": self.bucket, "key": key}
        return segment.model_copy(update={"load_spec": spec, "size": size})

    def pull(self, load_spec: dict[str, Any], dest_path: str | os.PathLike[str]) -> int:
        """Download the file a load spec names to ``dest_path``; returns its size in bytes."""
        fs, path = self._locate(load_spec)
        dest = str(dest_path)
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        self._copy(fs, path, self._local, dest, atomic=True)
        return os.path.getsize(dest)

    def delete(self, load_spec: dict[str, Any]) -> None:
        """Delete the file a load spec names (a missing file is not an error)."""
        fs, path = self._locate(load_spec)
        try:
            if fs.get_file_info(path).type == pafs.FileType.File:
                fs.delete_file(path)
        except (OSError, pa.ArrowException) as exc:
            raise DeepStorageError(f"cannot delete {path}: {exc}") from exc
        if fs is self._local:
            self._prune_empty_dirs(Path(path).parent)

    def exists(self, load_spec: dict[str, Any]) -> bool:
        fs, path = self._locate(load_spec)
        try:
            return bool(fs.get_file_info(path).type == pafs.FileType.File)
        except (OSError, pa.ArrowException) as exc:
            raise DeepStorageError(f"cannot stat {path}: {exc}") from exc

    # ---- helpers --------------------------------------------------------------------------

    def _s3_fs(self) -> pafs.FileSystem:
        if self._s3 is None:
            raise DeepStorageError("S3 load spec but no S3 filesystem configured (druid.s3.*)")
        return self._s3

    def _locate(self, load_spec: dict[str, Any]) -> tuple[pafs.FileSystem, str]:
        typ = load_spec.get("type") if isinstance(load_spec, dict) else None
        if typ == "local" and isinstance(load_spec.get("path"), str):
            return self._local, os.path.abspath(load_spec["path"])
        if typ == "s3" and isinstance(load_spec.get("bucket"), str):
            key = load_spec.get("key")
            if isinstance(key, str) and key:
                return self._s3_fs(), f"{load_spec['bucket']}/{key.lstrip('/')}"
        raise InvalidInput(f"Unsupported or malformed loadSpec {load_spec!r}")

    def _copy(
        self,
        src_fs: pafs.FileSystem,
        src: str,
        dst_fs: pafs.FileSystem,
        dst: str,
        *,
        atomic: bool,
    ) -> None:
        target = f"{dst}.{uuid.uuid4().hex}.tmp" if atomic else dst
        try:
            if src_fs.get_file_info(src).type != pafs.FileType.File:
                raise DeepStorageError(f"segment file not found: {src}")
            parent = dst.rsplit("/", 1)[0]
            if dst_fs is self._local:
                dst_fs.create_dir(parent, recursive=True)
            with src_fs.open_input_stream(src) as fin, dst_fs.open_output_stream(target) as fout:
                while chunk := fin.read(_COPY_BUFFER):
                    fout.write(chunk)
            if atomic:
                dst_fs.move(target, dst)
        except DeepStorageError:
            raise
        except (OSError, pa.ArrowException) as exc:
            if atomic:
                _quiet_delete(dst_fs, target)
            raise DeepStorageError(f"cannot copy {src} to {dst}: {exc}") from exc

    def _prune_empty_dirs(self, directory: Path) -> None:
        """Remove the now-empty partition/version/interval/dataSource directories."""
        root = Path(self.storage_directory)
        d = directory
        while d != root and root in d.parents:
            try:
                d.rmdir()
            except OSError:
                return
            d = d.parent


def _quiet_delete(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except (OSError, pa.ArrowException):
        return
