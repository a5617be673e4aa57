"""The package probe: the shell script one observation runs inside the image, and its output's parsers.

The script prints the package manager's list (dpkg or apk), the Python version and the Python
distributions between `@@` markers; `parse_probe` and `parse_pip` read that text (pure).
"""

from __future__ import annotations

# One container per observation: the package manager's list, then the Python version.
# dpkg-query prints every package it knows; ${db:Status-Abbrev} lets us keep installed ones only.
PROBE_SCRIPT = r"""
if command -v dpkg-query >/dev/null 2>&1; then
  echo '@@pm dpkg'
  dpkg-query -W -f '${db:Status-Abbrev}\t${Package}\t${Version}\n' 2>/dev/null
elif [ -f /lib/apk/db/installed ]; then
  echo '@@pm apk'
  grep -E '^[PV]:' /lib/apk/db/installed
else
  echo '@@pm none'
fi
echo '@@python'
for py in python3 python; do
  if command -v "$py" >/dev/null 2>&1; then
    "$py" -c 'import platform; print(platform.python_version())' 2>/dev/null && break
  fi
done
echo '@@pip'
for py in python3 python; do
  if command -v "$py" >/dev/null 2>&1; then
    "$py" -c 'import importlib.metadata as m
for d in m.distributions():
    print((d.metadata["Name"] or "").lower() + "\t" + (d.version or ""))' 2>/dev/null && break
  fi
done
echo '@@end'
"""


def parse_pip(text: str) -> dict[str, str] | None:
    """The `@@pip` section of PROBE_SCRIPT's output: {distribution: version}; None when the image has no
    Python (or the probe predates the section)."""
    if "@@pip" not in text:
        return None
    section = text.split("@@pip", 1)[1].split("@@end", 1)[0]
    out: dict[str, str] = {}
    for line in section.splitlines():
        name, sep, version = line.strip().partition("\t")
        if sep and name:
            out[name] = version
    return out or None


def parse_probe(text: str) -> tuple[str | None, dict[str, str] | None, str | None]:
    """Parse PROBE_SCRIPT's output: (package manager, {name: version} or None, python version or None)."""
    pm: str | None = None
    packages: dict[str, str] | None = None
    python: str | None = None
    section = None
    apk_name = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("@@pm "):
            pm = line[5:].strip()
            section = "pm"
            if pm in ("dpkg", "apk"):
                packages = {}
            else:
                pm = None
            continue
        if line == "@@python":
            section = "python"
            continue
        if line == "@@end" or (line.startswith("@@") and section is not None):
            section = None  # @@end, or a later section (@@pip) this parser does not read
            continue
        if section == "pm" and packages is not None:
            if pm == "dpkg":
                fields = line.split("\t")
                if len(fields) == 3:
                    status, name, version = fields
                    if len(status) >= 2 and status[1] == "i" and name:  # installed (ii, hi, ...)
                        packages[name] = version
                elif len(fields) == 2 and fields[0]:  # plain ${Package}\t${Version}
                    packages[fields[0]] = fields[1]
            elif pm == "apk":
                if line.startswith("P:"):
                    apk_name = line[2:]
                elif line.startswith("V:") and apk_name:
                    packages[apk_name] = line[2:]
                    apk_name = None
        elif section == "python" and line.strip() and python is None:
            python = line.strip()
    return pm, packages, python
