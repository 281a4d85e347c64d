"""Write the small YAML documents cloud-init reads, without a YAML library.

Every string is written in JSON's double-quoted form, which YAML reads the same way, so no
value (a password hash, an SSID with a colon) can change the document's structure.
"""

from __future__ import annotations

import json
from typing import Any


def scalar(value: Any) -> str:
    """Return one value in YAML's flow form."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def dump(value: Any, indent: int = 0) -> str:
    """Return ``value`` (dicts, lists, scalars) as block-style YAML."""
    return "\n".join(_lines(value, indent)) + "\n"


def _key(key: str) -> str:
    plain = key.replace("-", "").replace("_", "").isalnum() and key[:1].isalpha()
    return key if plain else json.dumps(key, ensure_ascii=False)


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{_key(key)}:")
                out += _lines(item, indent + 2)
            else:
                out.append(f"{pad}{_key(key)}: {scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                inner = _lines(item, indent + 2)
                out.append(f"{pad}- {inner[0].lstrip()}")
                out += inner[1:]
            else:
                out.append(f"{pad}- {scalar(item)}")
    else:
        out.append(pad + scalar(value))
    return out
