"""A service that needs an API token: from the environment or from a mounted secret file."""
import os
from pathlib import Path

secret_file = Path("/run/secrets/api_token")
token = os.environ.get("API_TOKEN") or (secret_file.read_text() if secret_file.exists() else "")
print("token loaded" if token else "no token", flush=True)
