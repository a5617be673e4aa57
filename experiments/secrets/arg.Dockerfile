# The token is a build argument, used and deleted in the same RUN (no file keeps it).
FROM python:3.13-slim
WORKDIR /app
ARG API_TOKEN
RUN printf 'machine packages.example.com login ci password %s\n' "$API_TOKEN" > /root/.netrc \
 && printf %s "$API_TOKEN" | sha256sum > /app/token.sha256 \
 && rm /root/.netrc
COPY app.py .
CMD ["python", "app.py"]
