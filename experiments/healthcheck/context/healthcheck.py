"""Exit 0 when the app answers /health within 0.4 s, else 1 (what HEALTHCHECK runs)."""

import sys
import urllib.request

try:
    with urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=0.4) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
