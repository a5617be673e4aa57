# Build wheels (psutil compiled with gcc) in the full image; install them in the slim one from a
# bind mount of the builder stage, so neither the wheels nor the compiler reach a layer.
FROM python:3.13 AS build
WORKDIR /src
COPY requirements.txt .
RUN pip wheel --no-cache-dir --no-binary psutil --wheel-dir /wheels -r requirements.txt

FROM python:3.13-slim
WORKDIR /app
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels /wheels/*.whl
COPY app.py .
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]
