# COPY of the same tar archive: it stays a file.
FROM python:3.13-slim
COPY payload.tar /opt/payload/
CMD ["ls", "-lR", "/opt/payload"]
