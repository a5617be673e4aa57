# A BuildKit cache mount: pip's cache survives between builds but never enters a layer.
FROM python:3.13-slim
WORKDIR /app
COPY requirements.txt .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r requirements.txt
COPY app.py .
CMD ["python", "app.py"]
