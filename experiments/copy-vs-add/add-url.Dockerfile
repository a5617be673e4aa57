# ADD fetches a URL at build time (the probe serves it on 127.0.0.1 and passes PAYLOAD_URL).
FROM python:3.13-slim
ARG PAYLOAD_URL
ADD ${PAYLOAD_URL} /opt/payload/data.bin
CMD ["ls", "-l", "/opt/payload"]
