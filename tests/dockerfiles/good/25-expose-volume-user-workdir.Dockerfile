FROM alpine:3.20
RUN apk add --no-cache dnsmasq
EXPOSE 80 53/udp 53/tcp 8000-8010
VOLUME /var/log/dnsmasq /var/cache/dnsmasq
VOLUME ["/etc/dnsmasq.d", "/srv/dns data"]
WORKDIR /srv
# Relative: goes on from the last WORKDIR, /srv/api.
WORKDIR api
WORKDIR v2/handlers
USER 1000:1000
USER nobody:nogroup
CMD ["dnsmasq", "--keep-in-foreground", "--log-facility=-"]
