FROM alpine:3.20
RUN adduser -D app
COPY --bogus=1 app.conf /etc/app.conf
USER app
CMD ["cat", "/etc/app.conf"]
