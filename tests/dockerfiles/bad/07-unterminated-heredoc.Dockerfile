FROM alpine:3.20
RUN <<EOF
apk add --no-cache nginx
mkdir -p /run/nginx
eof
CMD ["nginx", "-g", "daemon off;"]
