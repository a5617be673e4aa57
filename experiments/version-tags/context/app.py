from pathlib import Path

print("app", Path("/app/VERSION").read_text().strip(), "on", Path("/etc/base-release").read_text().strip())
