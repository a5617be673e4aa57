"""A small web app; the Dockerfile copies the whole working tree with `COPY . .`."""
import os

print("listening on", os.environ.get("PORT", "8000"), flush=True)
