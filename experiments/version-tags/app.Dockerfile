# The app. BASE is a tag (...:latest) or a pinned digest (...@sha256:...), set by the tags probe;
# without it the Dockerfile builds on python:3.13-slim.
ARG BASE=python:3.13-slim
FROM ${BASE}
ARG APP_VERSION=1
WORKDIR /app
COPY app.py .
RUN echo "$APP_VERSION" > /app/VERSION
CMD ["python", "app.py"]
