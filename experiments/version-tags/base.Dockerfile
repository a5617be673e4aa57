# A team's base image; the tags probe builds RELEASE=1, pushes it as :latest, then RELEASE=2 (the tag moves).
FROM python:3.13-slim
ARG RELEASE=1
RUN echo "base release $RELEASE" > /etc/base-release
