# Saved on Windows: every line ends in CR LF.
FROM python:3.12-alpine
WORKDIR /srv/metrics
RUN pip install --no-cache-dir \
        prometheus-client==0.20.0 \
    # continuation lines keep their CR LF too
        requests==2.32.3
ENV EXPORTER_PORT=9100 SCRAPE_TARGET="http://app:8080/stats"
COPY exporter.py .
EXPOSE 9100
CMD ["python", "exporter.py"]
