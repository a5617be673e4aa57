"""experiment.toml is checked by its model (schemas.Experiment) and says what the hand-written checks said.

tests/fixtures/experiment_messages.json holds, for each of tests/experiment_corpus.py's mutations of the
committed experiments, what load_experiment said before the model checked types, required and unknown
keys by hand. Every case it refused is refused with the very same one-line message. The only cases
that differ were accepted then: a wrong type in a key the old loader never read (a ratio claim's
`variant` or `value`, an op claim's `baseline` or `candidate`, [edits] `deps_append`); the model
refuses them, as the published schema always did.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import experiment_corpus as C

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "experiment_messages.json"
UNREAD_BEFORE = re.compile(
    r"^[a-z-]+:(?:(?:claims|preconditions)\[\d+\]\.(baseline|candidate|variant|value)|edits\.(deps_append))="
)
TYPE_MESSAGE = re.compile(r"^<d>/experiment\.toml:\d+: key '([^']+)': must be (str|float), got [a-z]+$")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str]]:
    """(recorded, now) for the cases of the experiments whose experiment.toml is as recorded."""
    recorded = json.loads(FIXTURE.read_text(encoding="utf-8"))
    same = {name for name, digest in C.digests().items() if recorded["digests"].get(name) == digest}
    assert len(same) >= len(recorded["digests"]) // 2, (
        "experiments changed: python -m tests.experiment_corpus"
    )
    expected = {case: m for case, m in recorded["messages"].items() if case.split(":")[0] in same}
    got = C.messages(tmp_path_factory.mktemp("corpus"))
    return expected, {case: m for case, m in got.items() if case.split(":")[0] in same}


def test_corpus_is_the_recorded_one(outcomes):
    """The generator makes the recorded cases, in the recorded order, most of them refused."""
    expected, got = outcomes
    assert list(got) == list(expected)
    assert len(got) > 5_000
    assert sum(v != "ACCEPTED" for v in expected.values()) > 0.7 * len(expected)


def test_every_refused_experiment_gets_the_message_it_got_before_the_model(outcomes):
    """A case the hand-written checks refused is refused with the very same one-line message."""
    expected, got = outcomes
    changed = [case for case, message in expected.items() if message != "ACCEPTED" and got[case] != message]
    assert changed == [], [(c, expected[c], got[c]) for c in changed[:5]]


def test_every_accepted_experiment_is_accepted_unless_a_key_never_read_had_a_wrong_type(outcomes):
    """A case accepted before is accepted, or it put a wrong type in a key the old loader never read."""
    expected, got = outcomes
    refused = [
        case for case, message in expected.items() if message == "ACCEPTED" and got[case] != "ACCEPTED"
    ]
    for case in refused:
        unread = UNREAD_BEFORE.match(case)
        said = TYPE_MESSAGE.match(got[case])
        assert unread and said, (case, got[case])
        key = unread.group(1) or unread.group(2)
        assert said.group(1).endswith(key), (case, got[case])
    assert len(refused) <= 462  # 462 of 1881 accepted cases when every experiment is as recorded


def test_messages_are_one_line_and_name_a_key(outcomes):
    """Every refusal is one line naming a key."""
    _, got = outcomes
    for case, message in got.items():
        assert "\n" not in message, case
        assert message == "ACCEPTED" or " key '" in message, case
