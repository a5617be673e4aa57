# Cleanup in a later RUN: the files disappear from the final filesystem, not from the image.
FROM python:3.13-slim
RUN apt-get update
RUN apt-get install -y --no-install-recommends curl
RUN apt-get clean && rm -rf /var/lib/apt/lists/*
