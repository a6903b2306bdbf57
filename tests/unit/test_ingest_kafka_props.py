"""consumerProperties -> aiokafka keyword arguments."""

from __future__ import annotations

import logging

import pytest

from common.errors import InvalidInput
from common.ingest.kafka import consumer_kwargs


def test_maps_known_keys_and_forces_no_group() -> None:
    kw = consumer_kwargs(
        {
            "bootstrap.servers": "a:9092, b:9092",
            "group.id": "ignored",
            "enable.auto.commit": "true",
            "fetch.max.wait.ms": "250",
            "max.poll.records": 1000,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
            'username="u1" password="p w";',
        }
    )
    assert kw["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert kw["group_id"] is None and kw["enable_auto_commit"] is False
    assert kw["fetch_max_wait_ms"] == 250 and kw["max_poll_records"] == 1000
    assert kw["isolation_level"] == "read_committed"
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("u1", "p w")
    assert kw["security_protocol"] == "SASL_PLAINTEXT"


def test_unknown_keys_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="common.ingest.kafka"):
        kw = consumer_kwargs({"bootstrap.servers": "a:1", "ssl.truststore.location": "/x"})
    assert "ssl.truststore.location" in caplog.text
    assert "ssl_truststore_location" not in kw


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({}, "bootstrap.servers"),
        ({"bootstrap.servers": "a:1", "fetch.max.wait.ms": "soon"}, "fetch.max.wait.ms"),
        ({"bootstrap.servers": "a:1", "isolation.level": "dirty"}, "isolation.level"),
    ],
)
def test_bad_properties_are_invalid_input(props: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        consumer_kwargs(props)
