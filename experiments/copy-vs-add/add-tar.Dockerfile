# ADD of a local tar archive: Docker extracts it.
FROM python:3.13-slim
ADD payload.tar /opt/payload/
CMD ["ls", "-lR", "/opt/payload"]
