"""harness.jsonparts reads the run file's open JSON parts; analysis.network_profile reads the recorded one."""

from __future__ import annotations

import pytest

from harness.analysis import network_profile
from harness.jsonparts import json_list, json_object


@pytest.mark.parametrize("value", [None, "lab", 3, 2.5, True, ["a"], []])
def test_json_object_is_empty_for_anything_but_an_object(value):
    """A missing key, null, a string, a number or a list reads as {} where an object is expected."""
    assert json_object(value) == {}


def test_json_object_returns_the_object_itself():
    """An object is returned as it is (no copy), so a reader sees exactly what the run file holds."""
    part = {"profile": {"name": "unlimited"}}
    assert json_object(part) is part


@pytest.mark.parametrize("value", [None, "abc", {"a": 1}, 0])
def test_json_list_is_empty_for_anything_but_a_list(value):
    """A string is not iterated character by character: anything but a list reads as []."""
    assert json_list(value) == []


def test_json_list_returns_the_list_itself():
    """A list is returned as it is (no copy)."""
    items = ["bash", "curl"]
    assert json_list(items) is items


@pytest.mark.parametrize(
    "fingerprint",
    [None, "not an object", {"lab": None}, {"lab": "down"}, {"lab": {"profile": ["x"]}}],
)
def test_network_profile_of_a_fingerprint_without_one_is_empty(fingerprint):
    """A fingerprint whose lab part or profile is missing or not an object gives no profile."""
    run = {"run_id": "r", "fingerprint": fingerprint}
    assert network_profile(run) == {}


def test_network_profile_reads_the_recorded_profile():
    """The profile the lab recorded in the run's fingerprint, as it was recorded."""
    run = {"run_id": "r", "fingerprint": {"lab": {"profile": {"name": "100mbit", "rate_bps": 1e8}}}}
    assert network_profile(run) == {"name": "100mbit", "rate_bps": 1e8}
