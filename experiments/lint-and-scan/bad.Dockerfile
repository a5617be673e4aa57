# What the article warns about, in one file: full base image, unpinned apt packages without
# cleanup, ADD for local files, cd instead of WORKDIR, pip cache kept, shell-form CMD, root.
FROM python:3.13
MAINTAINER ops@example.com
RUN apt-get update
RUN apt-get install -y curl
ADD . /app
RUN cd /app && pip install -r requirements.txt
EXPOSE 8000
CMD python /app/app.py
