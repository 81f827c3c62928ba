FROM nginx:1.27-alpine
# Two heredocs on one line: their bodies follow in order.
COPY <<robots.txt <<humans.txt /usr/share/nginx/html/
User-agent: *
Disallow: /private/
robots.txt
/* TEAM */
Site: docs.example.org
humans.txt
RUN cat <<ONE > /etc/motd && cat <<TWO >> /etc/motd
Welcome to the docs mirror.
ONE
Logs are in /var/log/nginx.
TWO
EXPOSE 80
