# COPY . . with no .dockerignore: the whole working tree goes into the context and the image.
FROM python:3.13-slim
WORKDIR /app
COPY . .
CMD ["python", "app.py"]
