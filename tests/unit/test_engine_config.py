"""scripts/engine_config.py: the lab engine's daemon.json keeps the user's settings and bounds BuildKit's history."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent.parent / "scripts" / "engine_config.py"
spec = importlib.util.spec_from_file_location("engine_config", SCRIPT)
assert spec and spec.loader
engine_config = importlib.util.module_from_spec(spec)
spec.loader.exec_module(engine_config)


def run(user: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(user), str(out)], capture_output=True, text=True)


def test_no_user_file_gives_a_bounded_history(tmp_path: Path) -> None:
    """Without /etc/docker/daemon.json the lab's config holds only the bounded history."""
    out = tmp_path / "daemon.json"
    assert run(tmp_path / "missing.json", out).returncode == 0
    assert json.loads(out.read_text()) == {"builder": {"history": {"maxAge": "2m", "maxEntries": 20}}}


def test_user_settings_are_kept_and_their_history_wins(tmp_path: Path) -> None:
    """Every user setting survives; a `builder.history` of the user's is not replaced; the user's file is unchanged."""
    user = tmp_path / "user.json"
    text = json.dumps({"debug": True, "builder": {"gc": {"enabled": True}, "history": {"maxEntries": 7}}})
    user.write_text(text)
    out = tmp_path / "daemon.json"
    assert run(user, out).returncode == 0
    conf = json.loads(out.read_text())
    assert conf == {"debug": True, "builder": {"gc": {"enabled": True}, "history": {"maxEntries": 7}}}
    assert user.read_text() == text


def test_other_builder_settings_get_the_history_added() -> None:
    """A `builder` section without history gets ours beside its own keys; the input dict is not changed."""
    user = {"builder": {"gc": {"enabled": False}}}
    assert engine_config.merged(user) == {
        "builder": {"gc": {"enabled": False}, "history": {"maxAge": "2m", "maxEntries": 20}}
    }
    assert user == {"builder": {"gc": {"enabled": False}}}


def test_a_broken_user_file_is_a_one_line_error(tmp_path: Path) -> None:
    """Invalid JSON, a non-object or a non-object `builder`: exit 1, one line naming the file, nothing written."""
    for bad in ("{not json", "[1, 2]", '{"builder": 3}'):
        user = tmp_path / "user.json"
        user.write_text(bad)
        out = tmp_path / "daemon.json"
        proc = run(user, out)
        assert proc.returncode == 1
        assert len(proc.stderr.strip().splitlines()) == 1
        assert str(user) in proc.stderr
        assert not out.exists()
