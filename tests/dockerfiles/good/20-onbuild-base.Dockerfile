# A base image for the team's C services: the children's builds run the triggers.
FROM gcc:14 AS builder-base
WORKDIR /src
ONBUILD ARG MAKE_TARGET=release
ONBUILD COPY . /src
ONBUILD RUN make -C /src "$MAKE_TARGET" && make -C /src install PREFIX=/out
onbuild label org.example.built-from=builder-base
ONBUILD HEALTHCHECK NONE
ONBUILD ENV BUILD_FLAVOUR="onbuild child" \
    CFLAGS=-O2
CMD ["make", "--version"]
