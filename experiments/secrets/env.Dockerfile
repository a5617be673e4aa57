# The token is baked into the image's environment.
FROM python:3.13-slim
WORKDIR /app
ARG API_TOKEN
ENV API_TOKEN=$API_TOKEN
# a build step that needs the token (records only its hash, to prove it arrived)
RUN printf %s "$API_TOKEN" | sha256sum > /app/token.sha256
COPY app.py .
CMD ["python", "app.py"]
