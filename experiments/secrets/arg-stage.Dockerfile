# The token is a build argument used only in a builder stage; the final stage copies a result.
FROM python:3.13-slim AS fetch
ARG API_TOKEN
RUN mkdir -p /out \
 && printf 'machine packages.example.com login ci password %s\n' "$API_TOKEN" > /root/.netrc \
 && printf %s "$API_TOKEN" | sha256sum > /out/token.sha256

FROM python:3.13-slim
WORKDIR /app
COPY --from=fetch /out/token.sha256 /app/token.sha256
COPY app.py .
CMD ["python", "app.py"]
