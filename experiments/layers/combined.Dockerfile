# Cleanup in the same RUN: the lists never reach a layer.
FROM python:3.13-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
