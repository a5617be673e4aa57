# The same app following the practices: slim base, WORKDIR, COPY, no pip cache, exec-form CMD,
# an unprivileged user.
FROM python:3.13-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY app.py .
USER 65534:65534
EXPOSE 8000
CMD ["python", "app.py"]
