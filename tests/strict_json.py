"""A JSON parser as strict as the standard: `NaN`, `Infinity` and `-Infinity` are errors, not numbers."""

import json


def _refuse(constant: str):
    raise ValueError(f"not JSON: {constant}")


def loads_strict(text: str):
    return json.loads(text, parse_constant=_refuse)
