# COPY . . with a .dockerignore (with.Dockerfile.dockerignore, the Dockerfile-specific form of .dockerignore).
FROM python:3.13-slim
WORKDIR /app
COPY . .
CMD ["python", "app.py"]
