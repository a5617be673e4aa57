"""Second-engine helpers (pure parts): mirror config, public repository names, builder parsing, digest pick."""

from __future__ import annotations

from harness.lab.core import pick_digest
from harness.lab.engine2 import daemon_config, parse_builder, public_repo


def test_daemon_config_mirrors_docker_hub_to_the_lab_registry():
    """The second engine's only registry setting is the lab registry as Docker Hub's mirror."""
    assert daemon_config("127.0.0.1:5000") == {"registry-mirrors": ["http://127.0.0.1:5000"]}


def test_public_repo_is_the_mirror_path():
    """Official images live under library/ in a mirror; other names keep their namespace."""
    assert public_repo("python:3.13-slim") == "library/python:3.13-slim"
    assert public_repo("docker.io/library/python:3.13") == "library/python:3.13"
    assert public_repo("bitnami/python:3.13") == "bitnami/python:3.13"


def test_parse_builder_reads_the_first_node():
    """Name, driver and the first node's endpoint come from `docker buildx inspect NAME`."""
    text = "Name:          e2\nDriver:        docker\n\nNodes:\nName:      e2\nEndpoint:  e2\nStatus:    running\n"
    assert parse_builder(text) == {"name": "e2", "driver": "docker", "endpoint": "e2"}


def test_pick_digest_prefers_the_public_repository():
    """An image carrying several repo digests is pinned by the public name's own digest."""
    digests = ["127.0.0.1:5000/imagebench-lab/python@sha256:aa", "python@sha256:bb"]
    assert pick_digest(digests, "python:3.13-slim") == "python@sha256:bb"
    assert pick_digest(["127.0.0.1:5000/x@sha256:cc"], "python:3.13") == "127.0.0.1:5000/x@sha256:cc"
    assert pick_digest([], "python:3.13") is None
