# Install into a virtual environment in the full image; copy the venv into the slim one.
FROM python:3.13 AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt .
RUN pip install --no-cache-dir --no-binary psutil -r requirements.txt

FROM python:3.13-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY app.py .
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]
