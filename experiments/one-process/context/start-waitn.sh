#!/bin/bash
# Two processes, but PID 1 exits as soon as either dies, so the restart policy can act.
python /app/worker.py &
python /app/app.py &
wait -n
exit 1
