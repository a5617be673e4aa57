# The token is a BuildKit secret: mounted for one RUN step, never part of a layer or the history.
FROM python:3.13-slim
WORKDIR /app
RUN --mount=type=secret,id=api_token \
    sha256sum /run/secrets/api_token > /app/token.sha256
COPY app.py .
CMD ["python", "app.py"]
