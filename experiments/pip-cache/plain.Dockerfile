# pip's defaults: downloads go through /root/.cache/pip, which stays in the layer.
FROM python:3.13-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY app.py .
CMD ["python", "app.py"]
