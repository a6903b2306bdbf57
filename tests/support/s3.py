"""A real S3 API for tests: moto's server on an ephemeral port, spoken to over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer

#: moto accepts any credentials; tests still pass these so the client never asks AWS for some.
ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_admin(endpoint: str) -> pafs.S3FileSystem:
    """A client that may create buckets (the services' clients never do)."""
    return pafs.S3FileSystem(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_override=endpoint,
        region=REGION,
        allow_bucket_creation=True,
    )


def put_objects(endpoint: str, bucket: str, objects: dict[str, bytes]) -> None:
    fs = s3_admin(endpoint)
    fs.create_dir(bucket)
    for key, data in objects.items():
        with fs.open_output_stream(f"{bucket}/{key}") as f:
            f.write(data)
