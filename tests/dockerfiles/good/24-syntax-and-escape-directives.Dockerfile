# syntax=docker/dockerfile:1.7
# escape=\

# The first other line ended the directives; this is a comment.
FROM rust:1.79-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /build
COPY . .
RUN cargo build --release --bin probe \
 && strip target/release/probe

FROM scratch
COPY --from=build /build/target/release/probe /probe
ENTRYPOINT ["/probe"]
