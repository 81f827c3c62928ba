FROM alpine:3.20
ENV TZ=Europe/Amsterdam
# The last instruction ends in a continuation and then the file ends.
RUN apk add --no-cache \
    ca-certificates \
    tzdata \
