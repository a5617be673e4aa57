"""Reading base images from Dockerfiles: stages, scratch, ARG substitution, continuations."""

from harness.engine.dockerfile import base_images


def test_stages_and_scratch_are_not_bases():
    text = """
# comment
ARG PY=3.13
FROM --platform=$BUILDPLATFORM python:${PY} AS builder
RUN echo hi \\
    && echo there
FROM builder AS test
FROM scratch AS empty
FROM python:${PY}-slim
COPY --from=builder /x /x
"""
    assert base_images(text) == ["python:3.13", "python:3.13-slim"]


def test_build_args_override_arg_defaults():
    text = "ARG BASE=debian:trixie-slim\nFROM $BASE\n"
    assert base_images(text) == ["debian:trixie-slim"]
    assert base_images(text, {"BASE": "python:3.12.2-slim"}) == ["python:3.12.2-slim"]
