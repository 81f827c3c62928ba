# A database stand-in (redis) and the app, both supervised under tini.
FROM alpine:3.20
RUN apk add --no-cache tini redis python3
COPY --chmod=0755 <<"EOF" /usr/local/bin/start
#!/bin/sh
set -e
redis-server --save "" --appendonly no --dir /var/lib/db &
db=$!
trap 'kill -TERM "$db"; wait "$db"' TERM INT
python3 /srv/app.py &
wait $!
EOF
COPY --chown=100:101 app.py /srv/app.py
VOLUME ["/var/lib/db"]
EXPOSE 6379 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=1s --start-period=3s --start-interval=1s --retries=5 \
    CMD redis-cli ping | grep -q PONG
ENTRYPOINT ["/sbin/tini", "--", "/usr/local/bin/start"]
