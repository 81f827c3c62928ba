FROM alpine:3.20
MAINTAINER Zoë Kowalczyk <zoe@example.org>
LABEL "org.opencontainers.image.title"="Café ☕ Orders" \
      "org.opencontainers.image.description"="Bestellungen für Ünïcödé-Fans — 注文システム" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
LABEL "key with spaces"="value with spaces" emoji="🚢⚓"
LABEL org.example.release-notes="line one\
 line two"
RUN apk add --no-cache tzdata
CMD ["date"]
