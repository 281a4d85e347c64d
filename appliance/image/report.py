"""What customizing wrote where, for people and for --json; never any secret's contents."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import boot_format
from .bundle import WHEELS_DIR


@dataclass
class WrittenFile:
    path: str
    size: int
    secret: bool
    note: str = ""


@dataclass
class CustomizeReport:
    """What was written where; never any secret's contents."""

    target: str
    format: str
    format_reason: str
    partition: int
    offset: int
    fat: str
    files: list[WrittenFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    verified: bool = False
    bundle: str = ""  # one line for the wheels written (each is in ``files`` too)
    token: list[str] = field(default_factory=list)  # where a generated token is and how to use it
    token_copy: dict[str, object] = field(default_factory=dict)  # the same, for --json

    @property
    def complete(self) -> bool:
        """Return True when the card lacks nothing to boot into a working appliance."""
        return not self.missing

    def lines(self) -> list[str]:
        """Return the report as lines for people."""
        how = (
            "firstrun.sh (Bookworm style)"
            if self.format == boot_format.FIRSTRUN
            else "cloud-init (Trixie style)"
        )
        where = f"boot partition {self.partition} ({self.fat}, at byte {self.offset})"
        out = [f"{self.target}: {where}", f"first boot by {how}: {self.format_reason}"]
        for f in self.files:
            if not f.path.startswith(WHEELS_DIR + "/"):
                out.append(f"  wrote {f.path} ({f.size} bytes{'; ' + f.note if f.note else ''})")
        out += [self.bundle] if self.bundle else []
        out += [f"  removed {path} (left from an earlier run)" for path in self.removed]
        if self.verified:
            out.append(f"read back all {len(self.files)} files from the medium: identical")
        out += self.token
        out += [f"warning: {w}" for w in self.warnings]
        if self.missing:
            out.append(
                "warning: INCOMPLETE (--allow-incomplete): the card will not boot into a "
                "working appliance; missing:"
            )
            out += [f"warning:   - {m}" for m in self.missing]
        return out

    def as_dict(self) -> dict[str, object]:
        """Return the report as plain data (for --json)."""
        return {
            "target": self.target,
            "format": self.format,
            "format_reason": self.format_reason,
            "partition": self.partition,
            "offset": self.offset,
            "fat": self.fat,
            "files": [vars(f) for f in self.files],
            "removed": list(self.removed),
            "warnings": list(self.warnings),
            "missing": list(self.missing),
            "complete": self.complete,
            "verified": self.verified,
            "token": dict(self.token_copy) or None,
        }
