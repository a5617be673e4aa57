"""Writes $LOG_LINES log lines (about 100 bytes each) to stdout or to a file, then exits.

  python app.py stdout
  python app.py file /var/log/app/app.log
"""

import logging
import os
import sys

lines = int(os.environ.get("LOG_LINES", "1000"))
if sys.argv[1:2] == ["file"]:
    path = sys.argv[2]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.FileHandler(path)
else:
    handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(logging.Formatter("%(levelname)s app request=%(message)s"))
log = logging.getLogger("app")
log.addHandler(handler)
log.setLevel(logging.INFO)
for i in range(lines):
    log.info("%06d path=/api/items/%06d status=200 bytes=512 duration_ms=12.5 user=anonymous", i, i)
handler.flush()
