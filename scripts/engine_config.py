#!/usr/bin/env python3
"""Write the lab engine's daemon.json: the user's settings plus a bounded BuildKit build history.

BuildKit keeps a history record of every build and deletes one only when it is both beyond
`maxEntries` and older than `maxAge` (50 and 48 h by default). A benchmark's thousands of builds
pile up and the engine slows as a run goes on, so the lab's engine keeps the last few minutes.
The user's file is read, never written; a `builder.history` there wins.

    python3 scripts/engine_config.py /etc/docker/daemon.json /var/lib/imagebench/daemon.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

HISTORY = {"maxAge": "2m", "maxEntries": 20}


def merged(user: dict) -> dict:
    """`user` with `builder.history` filled in when it has none (a new dict; `user` is not changed)."""
    conf = copy.deepcopy(user)
    builder = conf.setdefault("builder", {})
    if not isinstance(builder, dict):
        raise ValueError('"builder" is not an object')
    builder.setdefault("history", dict(HISTORY))
    return conf


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: engine_config.py USER_DAEMON_JSON OUT", file=sys.stderr)
        return 2
    user_path, out = Path(argv[0]), Path(argv[1])
    try:
        user = json.loads(user_path.read_text()) if user_path.is_file() else {}
        if not isinstance(user, dict):
            raise ValueError("not a JSON object")
        conf = merged(user)
    except (OSError, ValueError) as e:
        print(f"engine_config: error: {user_path}: {e}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(conf, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
