"""Reading base images from Dockerfiles through BuildKit's parser: stages, scratch, ARG substitution,
--platform, continuations, heredocs, comments, the escape directive, line numbers and parse errors."""

import pytest

from harness.engine.dockerfile import (
    DockerfileError,
    base_images,
    copy_sources,
    from_lines,
    logical_lines,
    read_dockerfile,
)
from harness.errors import HarnessError, UsageError


def test_stages_and_scratch_are_not_bases():
    """A FROM naming an earlier stage or scratch is not a base; ARG defaults reach every FROM."""
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
    """A build arg replaces the ARG default it names, in $NAME form too."""
    text = "ARG BASE=debian:trixie-slim\nFROM $BASE\n"
    assert base_images(text) == ["debian:trixie-slim"]
    assert base_images(text, {"BASE": "python:3.12.2-slim"}) == ["python:3.12.2-slim"]


def test_arg_default_used_in_from_with_quotes_and_several_names():
    """Quoted defaults are unquoted; one ARG may declare several names; an ARG after FROM is not global."""
    text = 'ARG PY="3.12" FLAVOUR=slim\nFROM python:${PY}-${FLAVOUR}\nARG PY=3.9\nFROM python:${PY}\n'
    assert base_images(text) == ["python:3.12-slim", "python:3.12"]


def test_arg_without_default_is_empty_and_modifiers_follow_the_shell_rules():
    """An ARG with no default and no build arg is unset: ${X:-word} gives the word, ${X:+word} nothing."""
    text = "ARG TAG\nARG SUFFIX=-slim\nFROM python:${TAG:-3.13}${SUFFIX:+-slim}\n"
    assert base_images(text) == ["python:3.13-slim"]
    assert base_images(text, {"TAG": "3.11"}) == ["python:3.11-slim"]


def test_from_records_stage_name_platform_and_line_number():
    """`FROM --platform=$BUILDPLATFORM x AS name`: the image, the stage, the platform flag as written, its line."""
    text = (
        "# syntax=docker/dockerfile:1\n\nFROM --platform=$BUILDPLATFORM golang:1.23 AS build\nFROM alpine\n"
    )
    first, second = from_lines(text)
    assert (first.image, first.stage, first.platform, first.line) == (
        "golang:1.23",
        "build",
        "$BUILDPLATFORM",
        3,
    )
    assert (second.image, second.stage, second.platform, second.line) == ("alpine", None, None, 4)


def test_continuation_lines_join_and_keep_the_first_line_number():
    """A FROM split over continuation lines (a comment between them) is one instruction starting at its first line."""
    text = "FROM python:3.12 \\\n# a comment inside\n    AS base\nRUN echo \\\n  done\nFROM base\n"
    froms = from_lines(text)
    assert [(f.image, f.stage, f.line) for f in froms] == [("python:3.12", "base", 1), ("base", None, 6)]
    assert base_images(text) == ["python:3.12"]
    assert [n for n, _ in logical_lines(text)] == [1, 4, 6]


def test_heredoc_body_is_not_read_as_instructions():
    """A line starting with FROM inside a RUN heredoc is the script's text, not a stage."""
    text = "FROM alpine:3.20\nRUN <<EOT\nFROM evil:latest\necho hi\nEOT\nFROM debian:trixie\n"
    assert base_images(text) == ["alpine:3.20", "debian:trixie"]
    assert [f.line for f in from_lines(text)] == [1, 6]
    assert [n for n, _ in logical_lines(text)] == [1, 2, 6]


def test_escape_directive_changes_the_continuation_character():
    """`# escape=`` ` makes the backtick the line continuation, as on Windows images."""
    text = (
        "# escape=`\nARG V=ltsc2022\nFROM mcr.microsoft.com/windows/servercore:${V} `\n    AS win\nFROM win\n"
    )
    froms = from_lines(text)
    assert [(f.image, f.stage, f.line) for f in froms] == [
        ("mcr.microsoft.com/windows/servercore:ltsc2022", "win", 3),
        ("win", None, 5),
    ]


def test_lowercase_instructions_and_crlf_line_ends():
    """Instructions are case-insensitive and CRLF line ends read like LF."""
    text = "arg PY=3.13\r\nfrom python:${PY} as b\r\nfrom b\r\n"
    assert base_images(text) == ["python:3.13"]


def test_parse_error_is_one_line_harness_error():
    """A Dockerfile the parser rejects is a one-line DockerfileError (a UsageError), not a traceback."""
    with pytest.raises(DockerfileError) as info:
        base_images("FROM alpine\nRUN <<EOT\nnever closed\n")
    assert isinstance(info.value, UsageError) and isinstance(info.value, HarnessError)
    assert "\n" not in str(info.value)
    assert str(info.value) == "Dockerfile does not parse: unterminated heredoc"


def test_from_without_image_names_its_line():
    """A bare FROM is a usage error that names its line."""
    with pytest.raises(DockerfileError, match=r"^Dockerfile line 2: FROM without an image$"):
        base_images("# only a comment\nFROM\n")


def test_file_without_instructions_has_no_bases():
    """An empty or comment-only Dockerfile names no base (the build reports the problem, not the plan)."""
    assert base_images("") == []
    assert base_images("# nothing here\n\n") == []


def test_read_dockerfile_missing_file_is_usage_error(tmp_path):
    """A missing Dockerfile is a UsageError naming the path."""
    with pytest.raises(UsageError, match="Dockerfile not found"):
        read_dockerfile(tmp_path / "Dockerfile")


def test_copy_sources_come_from_the_context_only():
    """COPY/ADD sources in order: --from=, heredocs, URLs and git addresses are not from the context."""
    text = (
        "FROM python:3.12 AS build\n"
        "COPY requirements.txt \\\n     setup.cfg /app/\n"
        "COPY --from=build /venv /venv\n"
        "COPY <<EOT /etc/motd\nhello\nEOT\n"
        'COPY ["a b.py", "/app/"]\n'
        "ADD https://example.com/x.tgz git@github.com:o/r.git /t/\n"
        "ADD --chown=1000 payload.tar /srv/\n"
    )
    assert copy_sources(text) == ["requirements.txt", "setup.cfg", "a b.py", "payload.tar"]
