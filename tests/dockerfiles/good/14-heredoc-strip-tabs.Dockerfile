FROM alpine:3.20
# <<- strips the leading tabs of the body and of the terminator.
RUN <<-EOF
	set -eu
	addgroup -S app
	adduser -S -G app -h /srv app
	EOF
COPY <<-EOF /etc/periodic/daily/cleanup
	#!/bin/sh
	find /tmp -type f -mtime +7 -delete
	EOF
RUN chmod +x /etc/periodic/daily/cleanup
CMD ["crond", "-f", "-l", "2"]
