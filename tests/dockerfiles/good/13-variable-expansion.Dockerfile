FROM alpine:3.20
ARG APP_USER
ARG DEBUG
ARG PORT=8080
ENV APP_HOME=${APP_HOME:-/srv/app} \
    LOG_FLAGS=${DEBUG:+--verbose} \
    RAW_PORT=$PORT
WORKDIR $APP_HOME
COPY config/${PORT}.conf ${APP_HOME}/server.conf
EXPOSE ${PORT:-80}
VOLUME ${APP_HOME}/data
USER ${APP_USER:-nobody}
LABEL port="${PORT}" literal='${NOT_EXPANDED}' escaped="\$DOLLAR"
CMD ["sh", "-c", "exec /srv/app/server $LOG_FLAGS --port $RAW_PORT"]
