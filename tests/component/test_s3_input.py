"""The ``s3`` input source against a real S3 API (moto's server over HTTP): listing prefixes,
``objectGlob``, one split per object, reading, and the client built from ``druid.s3.*`` with the
spec's ``properties`` / ``endpointConfig`` / ``clientConfig`` overrides."""

from __future__ import annotations

from typing import Any

import pytest

from common.config import S3Settings
from common.errors import InvalidInput
from common.ingest.batch_input.s3 import S3InputSource
from common.ingest.batch_input.sources import InputReadError, read_split, s3_client, splits
from common.ingest.batch_input.spec import parse_batch_task
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, moto_endpoint, put_objects

__all__ = ["moto_endpoint"]

OBJECTS = {
    "2024/b.json": b'{"n": 2}',
    "2024/a.json": b'{"n": 1}',
    "2024/sub/c.json": b'{"n": 3}',
    "2024/empty.json": b"",
    "2024/x.csv": b"n\n4",
    "2023/z.json": b'{"n": 5}',
}


def source(**fields: Any) -> S3InputSource:
    task = {
        "type": "index_parallel",
        "id": "t",
        "spec": {
            "dataSchema": {"dataSource": "w", "timestampSpec": {"column": "ts"}},
            "ioConfig": {"inputSource": {"type": "s3", **fields}, "inputFormat": {"type": "json"}},
        },
    }
    src = parse_batch_task(task).io.inputSource
    assert isinstance(src, S3InputSource)
    return src


def defaults(endpoint: str) -> S3Settings:
    """The peon's ``druid.s3.*``, as deep storage uses them."""
    return S3Settings(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_url=endpoint,
        endpoint_signing_region=REGION,
        enable_path_style_access=True,
    )


def where(src: S3InputSource, settings: S3Settings) -> list[str]:
    return [s.where for s in splits(src, s3_client(src, settings))]


def test_prefixes_list_non_empty_objects_sorted_and_glob_matches_the_key(
    moto_endpoint: str,
) -> None:
    put_objects(moto_endpoint, "logs", OBJECTS)
    settings = defaults(moto_endpoint)
    everything = where(source(prefixes=["s3://logs/2024/"]), settings)
    assert everything == [
        "s3://logs/2024/a.json",
        "s3://logs/2024/b.json",
        "s3://logs/2024/sub/c.json",
        "s3://logs/2024/x.csv",
    ]
    # ``**`` crosses '/', ``*`` does not: Java's PathMatcher on the object part of the URI
    assert where(source(prefixes=["s3://logs/"], objectGlob="**.json"), settings) == [
        "s3://logs/2023/z.json",
        "s3://logs/2024/a.json",
        "s3://logs/2024/b.json",
        "s3://logs/2024/sub/c.json",
    ]
    assert where(source(prefixes=["s3://logs/"], objectGlob="*.json"), settings) == []
    assert where(source(prefixes=["s3://logs/"], objectGlob="2024/*.{json,csv}"), settings) == [
        "s3://logs/2024/a.json",
        "s3://logs/2024/b.json",
        "s3://logs/2024/x.csv",
    ]
    # a prefix is a string prefix of the key, not a directory
    assert where(source(prefixes=["s3://logs/2024/s"]), settings) == ["s3://logs/2024/sub/c.json"]
    assert where(source(prefixes=["s3://logs/nothing/"]), settings) == []


def test_uris_and_objects_are_not_listed_and_each_object_is_read(
    moto_endpoint: str,
) -> None:
    put_objects(moto_endpoint, "logs", OBJECTS)
    settings = defaults(moto_endpoint)
    src = source(uris=["s3://logs/2024/b.json", "S3://logs/2024/empty.json"])
    fs = s3_client(src, settings)
    got = splits(src, fs)
    assert [s.where for s in got] == ["s3://logs/2024/b.json", "s3://logs/2024/empty.json"]
    assert [read_split(s, fs) for s in got] == [b'{"n": 2}', b""]
    objects = source(
        objects=[
            {"bucket": "logs", "path": "/2024/a.json"},
            {"bucket": "logs", "path": "2024/x.csv"},
        ],
        objectGlob="**.json",
    )
    assert where(objects, settings) == ["s3://logs/2024/a.json"]

    missing = splits(source(uris=["s3://logs/2024/nope.json"]), fs)
    with pytest.raises(InputReadError, match=r"s3://logs/2024/nope.json"):
        read_split(missing[0], fs)
    with pytest.raises(InputReadError, match="Cannot list"):
        splits(source(prefixes=["s3://no-such-bucket/x/"]), fs)


def test_spec_properties_and_endpoint_configure_the_client(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ``druid.s3.*`` at all: the spec alone reaches the store, with its own credentials."""
    put_objects(moto_endpoint, "logs", OBJECTS)
    monkeypatch.setenv("KDRUID_TEST_S3_SECRET", "from-env")
    host = moto_endpoint.removeprefix("http://")
    src = source(
        uris=["s3://logs/2024/a.json"],
        properties={
            "accessKeyId": {"type": "default", "password": "spec-key"},
            "secretAccessKey": {"type": "environment", "variable": "KDRUID_TEST_S3_SECRET"},
        },
        endpointConfig={"url": host, "signingRegion": REGION},
        clientConfig={"protocol": "http", "enablePathStyleAccess": True},
    )
    fs = s3_client(src, S3Settings())
    options = fs.__reduce__()[1][0]
    assert (options["access_key"], options["secret_key"]) == ("spec-key", "from-env")
    assert (options["endpoint_override"], options["scheme"]) == (host, "http")
    assert [read_split(s, fs) for s in splits(src, fs)] == [b'{"n": 1}']

    plain = source(
        uris=["s3://logs/2024/a.json"],
        properties={"accessKeyId": "k", "secretAccessKey": "s"},
    )
    options = s3_client(plain, defaults(moto_endpoint)).__reduce__()[1][0]
    assert (options["access_key"], options["secret_key"]) == ("k", "s")
    assert options["endpoint_override"] == host  # the rest from druid.s3.*

    monkeypatch.delenv("KDRUID_TEST_S3_SECRET")
    with pytest.raises(InputReadError, match=r"KDRUID_TEST_S3_SECRET\] is not set"):
        s3_client(src, S3Settings())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Exactly one of uris, prefixes or objects must be specified"),
        (
            {"uris": ["s3://a/b"], "prefixes": ["s3://a/"]},
            "Exactly one of uris, prefixes or objects",
        ),
        ({"uris": ["gs://a/b"]}, r"Invalid URI scheme \[gs://a/b\] must be \[s3\]"),
        ({"objects": [{"bucket": "a b", "path": "x"}]}, "DNS-compliant"),
        ({"uris": ["s3://a/b"], "objectGlob": "[ab"}, "missing ']'"),
        (
            {"uris": ["s3://a/b"], "properties": {"accessKeyId": "k"}},
            "secretAccessKey cannot be null if accessKeyId is given",
        ),
        (
            {
                "uris": ["s3://a/b"],
                "properties": {
                    "accessKeyId": {"type": "file", "path": "/etc/x"},
                    "secretAccessKey": "s",
                },
            },
            "password provider",
        ),
        (
            {"uris": ["s3://a/b"], "properties": {"assumeRoleArn": "arn:aws:iam::1:role/r"}},
            "assumeRoleArn is not supported",
        ),
        ({"uris": ["s3://a/b"], "systemFields": ["__file_uri"]}, "systemFields"),
    ],
)
def test_bad_s3_specs_are_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        source(**fields)
