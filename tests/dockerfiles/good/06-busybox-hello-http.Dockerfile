FROM busybox:1.36
WORKDIR /www
RUN mkdir -p cgi-bin && cat <<EOF > index.html
<!doctype html>
<title>hello</title>
<h1>Hello from busybox httpd</h1>
EOF
RUN cat <<'EOF' > cgi-bin/time && chmod +x cgi-bin/time
#!/bin/sh
echo "Content-Type: text/plain"
echo
date -u
EOF
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD wget -qO- http://127.0.0.1:8080/ >/dev/null
CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
