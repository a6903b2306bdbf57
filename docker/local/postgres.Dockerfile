# Build context: docker/local.
# Stand-in for postgres:16-alpine where no registry is reachable: PostgreSQL 15 from the Debian
# archive on the locally built base (scripts/container-smoke). It honours the same variables the
# compose file gives the official image (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB), keeps its
# data in /var/lib/postgresql/data and has pg_isready on the PATH for the compose healthcheck.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15 \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
ENTRYPOINT ["sh", "/usr/local/bin/postgres-entrypoint.sh"]
