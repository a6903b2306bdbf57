#!/bin/sh
# Listen on 0.0.0.0:9092 and advertise the PLAINTEXT address of KAFKA_ADVERTISED_LISTENERS
# (kafka:9092 in docker-compose.yml). tansu has one listener: the compose file's EXTERNAL
# listener (host port 29092) is not served by this stand-in.
set -eu
advertised="kafka:9092"
for l in $(echo "${KAFKA_ADVERTISED_LISTENERS:-}" | tr ',' ' '); do
  case "$l" in PLAINTEXT://*) advertised="${l#PLAINTEXT://}" ;; esac
done
exec tansu broker --listener-url tcp://0.0.0.0:9092 --advertised-listener-url "tcp://$advertised" \
  --storage-engine memory://tansu/
