# TODO: write the Dockerfile for the billing worker.
#
# FROM python:3.12-slim
# RUN pip install -r requirements.txt
# CMD ["python", "-m", "billing"]
