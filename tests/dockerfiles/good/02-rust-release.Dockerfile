FROM rust:1.79-slim-bookworm AS Planner
WORKDIR /usr/src/ledger
COPY Cargo.toml Cargo.lock ./
# Build the dependencies alone first so that they are cached.
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && cargo build --release --locked \
 && rm -rf src

COPY src ./src
RUN touch src/main.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The stage was written "Planner": stage names are case-insensitive.
COPY --from=planner --link /usr/src/ledger/target/release/ledger /usr/local/bin/ledger
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/ledger", "health"]
EXPOSE 7000
CMD ["ledger", "serve"]
