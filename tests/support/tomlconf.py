"""Write appliance.toml files for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

RO_USER, RO_PASSWORD = "analytics_ro", "ro-pass-5ecret"


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(x)}' for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sections: dict, tables: list[dict]) -> Path:
    lines = []
    for name, values in sections.items():
        if values is None:
            continue
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    for t in tables:
        lines.append("[[tables]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in t.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def sections(state_dir, pg, password_file, sshd=None, **extra) -> dict:
    """Return config sections for the test cluster's `sales` database, via sshd if given."""
    out = {
        "appliance": {"state_dir": str(state_dir)},
        "ssh": None
        if sshd is None
        else {
            "host": "127.0.0.1",
            "port": sshd.port,
            "user": sshd.user,
            "key_file": str(sshd.client_key),
            "known_hosts": str(sshd.known_hosts),
        },
        "source": {
            "host": "127.0.0.1",
            "port": pg.port,
            "database": "sales",
            "user": RO_USER,
            "password_file": str(password_file),
        },
    }
    for name, values in extra.items():
        out[name] = {**(out.get(name) or {}), **values} if values is not None else None
    return out


def password_file(path: Path) -> Path:
    """Write the read-only role's password to ``path`` with mode 0600."""
    path.write_text(RO_PASSWORD + "\n")
    path.chmod(0o600)
    return path
