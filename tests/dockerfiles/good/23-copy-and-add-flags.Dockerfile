FROM golang:1.22 AS assets
WORKDIR /assets
COPY web/ ./
RUN go run ./cmd/bundle -o /assets/out

FROM alpine:3.20
COPY --link --chown=1000:1000 --chmod=0644 config/app.yaml /etc/app/app.yaml
COPY --chmod=755 --link=false scripts/*.sh /usr/local/bin/
COPY ["docs/read me.txt", "docs/CHANGES.md", "/usr/share/doc/app/"]
ADD --chown=app:app --chmod=0640 vendor/geoip.tar.gz /usr/share/geoip/
ADD --link ["fonts/Noto Sans.ttf", "/usr/share/fonts/"]
COPY --from=assets /assets/out/ /srv/www/
COPY --from=0 --chown=root:root /assets/out/manifest.json /srv/www/manifest.json
COPY --from=busybox:1.36 /bin/busybox /bin/busybox
CMD ["/bin/busybox", "httpd", "-f", "-h", "/srv/www"]
