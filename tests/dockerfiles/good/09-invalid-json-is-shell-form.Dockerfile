FROM debian:bookworm-slim
# Starts with [ but is not JSON: the shell runs it, and [ is test(1).
RUN [ -f /etc/os-release ] && . /etc/os-release && echo "building on $PRETTY_NAME"
# Unquoted words are not JSON either: /bin/sh -c '[echo, hi]'.
CMD [echo, hi]
# Single quotes are not JSON: this is shell form too.
ENTRYPOINT ['/usr/bin/env']
# Exec form, with a JSON escape in it.
HEALTHCHECK CMD ["sh", "-c", "echo \"ok\""]
