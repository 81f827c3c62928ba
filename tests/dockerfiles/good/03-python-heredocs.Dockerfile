# syntax=docker/dockerfile:1.4
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN <<EOF
set -eu
python -m venv /opt/venv
/opt/venv/bin/pip install --no-cache-dir flask==3.0.3 gunicorn==22.0.0
EOF
# A quoted delimiter: the $ in the body stays as it is.
COPY <<"EOF" /app/gunicorn.conf.py
import os
bind = "0.0.0.0:" + os.environ.get("PORT", "8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# not expanded by the builder: $HOME
EOF
COPY app.py .
ENV PATH="/opt/venv/bin:$PATH"
EXPOSE 8000
CMD ["gunicorn", "-c", "/app/gunicorn.conf.py", "app:app"]
