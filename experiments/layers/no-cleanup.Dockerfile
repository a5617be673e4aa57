# Reference: install a package and leave apt's lists and caches behind.
FROM python:3.13-slim
RUN apt-get update
RUN apt-get install -y --no-install-recommends curl
