FROM debian:bookworm-slim
SHELL /bin/bash -o pipefail -c
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates
RUN curl -fsSL https://example.com/install.sh | sh
CMD ["bash"]
