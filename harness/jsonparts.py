"""Reading the run file's open JSON parts (the fingerprint, probe data, a base's provenance).

`harness.records` types those parts as `JSONObject`: any JSON value may sit under a key. A reader that
expects an object there takes `json_object(part.get(key))`: the object, or {} for a missing key, null
or anything else, so a reader never indexes into a string or a number.
"""

from __future__ import annotations

from harness.records import JSONObject, JSONValue


def json_object(value: object) -> JSONObject:
    """`value` when it is a JSON object, else {}."""
    return value if isinstance(value, dict) else {}


def json_list(value: object) -> list[JSONValue]:
    """`value` when it is a JSON array, else []."""
    return value if isinstance(value, list) else []
