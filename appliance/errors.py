"""One exception hierarchy for the appliance.

Every error a user can cause or fix is an ``ApplianceError``; its message says what
happened, why, and what to do. The CLI turns these into clean messages, never
tracebacks. Subclasses also inherit the matching built-in so callers can catch either.
Kept compatible with Python 3.9 (the flasher imports it on a stock Mac).
"""

from __future__ import annotations


class ApplianceError(Exception):
    """Something went wrong in the appliance."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(ApplianceError, ValueError):
    """The configuration file is invalid."""

    def __init__(self, problems: list, path: str = "") -> None:
        self.problems = list(problems)
        self.path = path
        where = f" in {path}" if path else ""
        lines = [f"{len(self.problems)} problem(s){where}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class SecretError(ApplianceError, PermissionError):
    """A secret could not be read safely."""


class TunnelError(ApplianceError, ConnectionError):
    """The SSH tunnel to the bastion could not be opened."""


class HostKeyError(TunnelError):
    """The bastion's host key is unknown or has changed."""


class SourceError(ApplianceError, ConnectionError):
    """The source database could not be reached or queried."""


class LoginError(SourceError):
    """The source database refused the login."""


class QueryError(SourceError):
    """The source answered one query with an error (a timeout, a view that raises): that
    table's problem, not the link's; the other tables go on."""


class SourceSchemaError(ApplianceError, LookupError):
    """A configured table or column does not exist at the source or cannot be mapped."""


class ReplicaError(ApplianceError, OSError):
    """The local replica could not be written."""


class DiskFullError(ReplicaError):
    """The disk of the replica is (nearly) full: the last good data is kept; free some space."""


class StateError(ApplianceError, OSError):
    """The state store could not be read or written."""
