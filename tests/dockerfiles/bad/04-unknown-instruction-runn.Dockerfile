FROM debian:bookworm-slim
RUNN apt-get update && apt-get install -y curl
WORKDIR /srv
ENV CURL_HOME=/srv
CMD ["curl", "--version"]
