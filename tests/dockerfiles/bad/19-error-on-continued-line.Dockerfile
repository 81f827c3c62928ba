FROM alpine:3.20
RUN apk add --no-cache python3
COPY --chown=app:app \
     --chmode=0644 \
     settings.toml /etc/app/settings.toml
CMD ["python3", "-m", "app"]
