"""Input sources of native batch ingestion, split into the units a task reads.

Druid's ``InputSource`` / ``InputSplit``: ``inline`` (one split holding ``data``), ``local``
(``files``, plus every file under ``baseDir`` whose name matches the ``filter`` glob, sorted),
``http`` (one split per URI), ``s3`` (one split per object, ``common.ingest.batch_input.s3``) and
``druid`` (one split per visible segment of ``dataSource`` over ``interval``; resolved by the
runner, which asks the coordinator for the segments). ``read_split`` returns a split's bytes
(blocking: run it in a worker thread).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.fs as pafs

from common.config import S3Settings
from common.errors import InvalidInput, KdruidError
from common.ingest.batch_input import s3
from common.ingest.batch_input.s3 import S3InputSource
from common.ingest.batch_input.spec import (
    HttpInputSource,
    InlineInputSource,
    LocalInputSource,
)

HTTP_TIMEOUT = 60.0


class InputReadError(KdruidError):
    """An input could not be read (missing file, HTTP error): the task fails with this."""

    error_code = "Input read failed"


@dataclass(frozen=True)
class Split:
    """One unit of input: ``kind`` is ``inline``, ``file``, ``http`` or ``s3``; ``where`` the
    data, the path or the URI."""

    kind: str
    where: str
    auth: tuple[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "where": self.where}


def local_files(source: LocalInputSource) -> list[str]:
    """The files of a ``local`` input source: ``files`` then the matches under ``baseDir``."""
    out = list(source.files or [])
    if source.baseDir:
        base = Path(source.baseDir)
        if not base.is_dir():
            raise InvalidInput(
                f"Invalid inputSource: baseDir [{source.baseDir}] is not a directory"
            )
        matches = []
        for root, _dirs, names in os.walk(base):
            for name in names:
                if fnmatch.fnmatch(name, source.filter or "*"):
                    matches.append(str(Path(root) / name))
        out.extend(sorted(matches))
    return out


FileLikeSource = InlineInputSource | LocalInputSource | HttpInputSource | S3InputSource


def splits(source: FileLikeSource, s3_fs: pafs.FileSystem | None = None) -> list[Split]:
    """The splits of a file-like input source (``druid`` is resolved by the runner); ``s3_fs``
    lists an ``s3`` source's ``prefixes`` (blocking)."""
    if isinstance(source, S3InputSource):
        try:
            objects = s3.list_objects(source, s3_fs)
        except (OSError, pa.ArrowException) as e:
            raise InputReadError(f"Cannot list s3 objects {source.prefixes}: {e}") from None
        return [Split("s3", o.uri) for o in objects]
    if isinstance(source, InlineInputSource):
        return [Split("inline", source.data)]
    if isinstance(source, LocalInputSource):
        return [Split("file", f) for f in local_files(source)]
    auth = None
    if source.httpAuthenticationUsername is not None:
        password = source.httpAuthenticationPassword
        if isinstance(password, dict):
            if password.get("type") != "default":
                raise InvalidInput(
                    "Invalid inputSource: httpAuthenticationPassword of type "
                    f"[{password.get('type')}] is not supported (only a string or 'default')"
                )
            password = str(password.get("password") or "")
        auth = (source.httpAuthenticationUsername, password or "")
    for uri in source.uris:
        if not uri.startswith(("http://", "https://")):
            raise InvalidInput(f"Invalid inputSource: uri [{uri}] is not http or https")
    return [Split("http", u, auth) for u in source.uris]


def s3_client(source: S3InputSource, defaults: S3Settings | None) -> pafs.FileSystem:
    """The S3 client of an ``s3`` source: ``druid.s3.*`` with the spec's overrides."""
    try:
        return s3.filesystem(source, defaults)
    except ValueError as e:  # a password provider that cannot be resolved here
        raise InputReadError(f"Cannot read s3 input: {e}") from None
    except (OSError, pa.ArrowException) as e:
        raise InputReadError(f"Cannot create S3 client: {e}") from None


def read_split(split: Split, s3_fs: pafs.FileSystem | None = None) -> bytes:
    """A split's bytes (blocking); an ``s3`` split needs the source's client."""
    if split.kind == "s3":
        if s3_fs is None:
            raise InputReadError(f"Cannot read [{split.where}]: no S3 client")
        try:
            return s3.read_object(s3_fs, s3.parse_uri(split.where))
        except (OSError, pa.ArrowException) as e:
            raise InputReadError(f"Cannot read input object [{split.where}]: {e}") from None
    if split.kind == "inline":
        return split.where.encode()
    if split.kind == "file":
        try:
            return Path(split.where).read_bytes()
        except OSError as e:
            raise InputReadError(f"Cannot read input file [{split.where}]: {e}") from None
    try:
        r = httpx.get(split.where, auth=split.auth, timeout=HTTP_TIMEOUT, follow_redirects=True)
    except httpx.HTTPError as e:
        raise InputReadError(f"Cannot read input uri [{split.where}]: {e}") from None
    if r.status_code != 200:
        raise InputReadError(f"Cannot read input uri [{split.where}]: HTTP {r.status_code}")
    return r.content
