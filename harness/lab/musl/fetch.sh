#!/bin/sh
# fetch.sh MIRROR NAME...: download the named sources.txt entries, check sha256, unpack to /src/NAME
set -eu
mirror=$1; shift
for name in "$@"; do
  line=$(grep -E "^$name[[:space:]]" /src/sources.txt)
  path=$(echo "$line" | awk '{print $2}'); sum=$(echo "$line" | awk '{print $3}')
  file=/src/$(basename "$path")
  curl -fsS --retry 3 -o "$file" "$mirror/$path"
  echo "$sum  $file" | sha256sum -c - >/dev/null
  mkdir -p "/src/$name" && tar -xf "$file" -C "/src/$name" --strip-components=1 && rm -f "$file"
done
