#!/bin/sh
# `kafka-broker-api-versions.sh --bootstrap-server HOST:PORT`, as far as the compose healthcheck
# uses it: exit 0 when the broker answers an ApiVersions request.
set -eu
server=localhost:9092
while [ $# -gt 0 ]; do
  case "$1" in --bootstrap-server) server="$2"; shift 2 ;; *) shift ;; esac
done
exec python /opt/kafka/bin/kafka_api_versions.py "$server"
