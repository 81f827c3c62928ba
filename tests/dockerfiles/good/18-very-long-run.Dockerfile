FROM debian:bookworm-slim
# One very long physical line, as a templating tool writes it.
RUN set -eux && apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev libpq-dev libsqlite3-dev zlib1g-dev libbz2-dev libreadline-dev libffi-dev liblzma-dev libxml2-dev libxslt1-dev libjpeg62-turbo-dev libpng-dev libfreetype6-dev libwebp-dev libtiff-dev libcurl4-openssl-dev libyaml-dev libgdbm-dev libncurses-dev uuid-dev git curl wget unzip xz-utils ca-certificates gnupg dirmngr locales tini procps less nano && mkdir -p /srv/app && chmod 0750 /srv/app && mkdir -p /srv/app/tmp && chmod 0750 /srv/app/tmp && mkdir -p /srv/app/log && chmod 0750 /srv/app/log && mkdir -p /srv/app/cache && chmod 0750 /srv/app/cache && mkdir -p /var/lib/app && chmod 0750 /var/lib/app && mkdir -p /etc/app/conf.d && chmod 0750 /etc/app/conf.d && sed -i "s/^# *en_US.UTF-8/en_US.UTF-8/" /etc/locale.gen && locale-gen && groupadd --system --gid 1001 app && useradd --system --uid 1001 --gid app --home-dir /srv/app --shell /usr/sbin/nologin app && chown -R app:app /srv/app /var/lib/app && apt-get purge -y --auto-remove build-essential pkg-config && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/* /var/tmp/* && echo "image ready: $(date -u +%Y-%m-%dT%H:%M:%SZ)" > /etc/app/build-info
ENV LANG=en_US.UTF-8
USER app
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["bash"]
