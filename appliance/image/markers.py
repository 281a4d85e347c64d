"""PEP 508 environment markers and version comparison, with the standard library alone.

pip's ``packaging`` is not there on a stock Mac's Python 3.9; this covers what wheels'
METADATA uses: ``and``/``or``/parentheses, the comparison operators, ``in``/``not in``,
version comparison for the ``python_*`` variables, and specifiers such as ``>=2,<3``,
``~=3.9``, ``==2.*`` over the usual version forms (1.2, 1.2rc1, 1.2.post3, 1.2.dev0).
"""

from __future__ import annotations

import re

from .errors import ImageError


def normalize(name: str) -> str:
    """Return a distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


_TOKEN = re.compile(
    r"""\s*(\(|\)|'[^']*'|"[^"]*"|===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b|and\b|or\b|[A-Za-z_.]+)"""
)
_VERSION_VARS = {"python_version", "python_full_version", "implementation_version", "platform_release"}


def evaluate(marker: str, env: dict[str, str]) -> bool:
    """Return the truth of a PEP 508 marker in ``env``."""
    tokens, pos = [], 0
    text = marker.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or not m.group(1):
            raise ImageError(f'cannot read the environment marker "{marker}" in a wheel\'s METADATA')
        tokens.append(re.sub(r"\s+", " ", m.group(1)))
        pos = m.end()
    value, rest = _or(tokens, env)
    if rest:
        raise ImageError(f'cannot read the environment marker "{marker}" in a wheel\'s METADATA')
    return value


def _or(tokens: list[str], env: dict[str, str]) -> tuple[bool, list[str]]:
    value, tokens = _and(tokens, env)
    while tokens[:1] == ["or"]:
        right, tokens = _and(tokens[1:], env)
        value = value or right
    return value, tokens


def _and(tokens: list[str], env: dict[str, str]) -> tuple[bool, list[str]]:
    value, tokens = _atom(tokens, env)
    while tokens[:1] == ["and"]:
        right, tokens = _atom(tokens[1:], env)
        value = value and right
    return value, tokens


def _atom(tokens: list[str], env: dict[str, str]) -> tuple[bool, list[str]]:
    if tokens[:1] == ["("]:
        value, rest = _or(tokens[1:], env)
        if rest[:1] != [")"]:
            raise ImageError("unbalanced parentheses in an environment marker")
        return value, rest[1:]
    if len(tokens) < 3:
        raise ImageError("an environment marker ends too early")
    left, op, right = tokens[0], tokens[1], tokens[2]
    return _compare(left, op, right, env), tokens[3:]


def _value(token: str, env: dict[str, str]) -> str:
    if token[:1] in ("'", '"'):
        return token[1:-1]
    return env.get(token, "")


def _compare(left: str, op: str, right: str, env: dict[str, str]) -> bool:
    a, b = _value(left, env), _value(right, env)
    if "extra" in (left, right):
        a, b = normalize(a), normalize(b)
    if op == "in":
        return a in b
    if op == "not in":
        return a not in b
    if {left, right} & _VERSION_VARS and op not in ("===",):
        return satisfies(a, op + b)
    return {"==": a == b, "!=": a != b, "===": a == b}.get(op, False)


# -- versions -------------------------------------------------------------------------------

_VERSION = re.compile(
    r"^v?(?:\d+!)?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?"
    r"(?:[-_.]?(post|rev|r)[-_.]?(\d*))?(?:[-_.]?(dev)[-_.]?(\d*))?"
)


def version_key(version: str) -> tuple:
    """Return a key that orders versions as pip does for the usual forms (1.2, 1.2rc1, 1.2.post3)."""
    m = _VERSION.match(version.strip().lower())
    if not m:
        return ((0,), 0, 0, 0, 0)
    release = tuple(int(p) for p in m.group(1).split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre = (0, int(m.group(3) or 0)) if m.group(2) else (1, 0)
    post = int(m.group(5) or 0) if m.group(4) else -1
    dev = int(m.group(7) or 0) if m.group(6) else 1 << 30
    if m.group(6) and not m.group(2) and not m.group(4):
        pre = (-1, 0)  # 1.0.dev1 sorts before 1.0a1
    return (release, pre, post, dev)


def satisfies(version: str, specifiers: str) -> bool:
    """Return True when ``version`` meets every comma-separated specifier (">=2,<3", "==2.*")."""
    for spec in (s.strip() for s in specifiers.split(",") if s.strip()):
        m = re.match(r"^(===|==|!=|<=|>=|~=|<|>)\s*(.+)$", spec)
        if not m:
            return False
        op, want = m.group(1), m.group(2).strip()
        if op in ("==", "!=") and want.endswith(".*"):
            prefix = want[:-2].split(".")
            same = version.split(".")[: len(prefix)] == prefix
            if same != (op == "=="):
                return False
            continue
        have, need = version_key(version), version_key(want)
        if op == "~=":
            parts = want.split(".")
            ok = have >= need and version.split(".")[: len(parts) - 1] == parts[:-1]
        else:
            ok = {
                "==": have == need,
                "===": version == want,
                "!=": have != need,
                "<=": have <= need,
                ">=": have >= need,
                "<": have < need,
                ">": have > need,
            }[op]
        if not ok:
            return False
    return True
