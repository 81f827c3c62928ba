FROM rust:1.79 AS 1st
RUN cargo build --release

FROM debian:bookworm-slim
COPY --from=1st /target/release/app /usr/local/bin/app
