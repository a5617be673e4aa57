#!/bin/sh
# The common "two processes in one container" pattern: the worker in the background, the app
# in the foreground as PID 1. Nobody watches the worker.
python /app/worker.py &
exec python /app/app.py
