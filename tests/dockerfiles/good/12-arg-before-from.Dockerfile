# Global ARGs: seen by the FROM lines only, unless a stage declares them again.
ARG REGISTRY=docker.io
ARG BASE_IMAGE=library/alpine
ARG ALPINE_VERSION=3.20

FROM ${REGISTRY}/${BASE_IMAGE}:${ALPINE_VERSION} AS base
ARG ALPINE_VERSION
RUN echo "base is alpine $ALPINE_VERSION" > /etc/base-release

FROM base AS runtime
ARG APP_VERSION=0.0.0-dev
LABEL org.opencontainers.image.version=$APP_VERSION
COPY --from=base /etc/base-release /etc/base-release
CMD ["cat", "/etc/base-release"]
