FROM postgres:16-bookworm
# The base image's own health check is not wanted here.
HEALTHCHECK NONE
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-cache policy postgresql-16 | grep -m1 Installed \
    && rm -rf /var/lib/apt/lists/*
COPY --chown=postgres:postgres initdb/ /docker-entrypoint-initdb.d/
SHELL ["/bin/sh", "-c"]
ENV POSTGRES_DB=orders
USER postgres
EXPOSE 5432
