# No secret at build time: the token is given to the container when it runs.
FROM python:3.13-slim
WORKDIR /app
COPY app.py .
CMD ["python", "app.py"]
