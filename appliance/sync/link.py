"""The way to the source: the tunnel (when [ssh] is configured) and the database session.

Owns their lifetimes across passes: opens the tunnel on demand, notices when it died,
reopens it, and knows which part is down so health can say why.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa

from ..config import Config, SSHSettings
from ..errors import SecretError, SourceError, TunnelError
from ..secrets import read_secret
from .source import Source
from .tunnel import Tunnel

log = logging.getLogger(__name__)


class SourceLink:
    """Tunnel plus read-only source session, reopened as needed."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.tunnel: Tunnel | None = None
        self._source: Source | None = None
        self.tunnel_state = "direct" if config.ssh is None else "down"
        self.database_state = "down"
        self.open_seconds = 0.0  # what the last source() spent opening the tunnel and logging in
        self._closed_statements = 0  # statements of sessions closed since

    def _password(self) -> str | None:
        s = self.config.source
        return read_secret(
            file=s.password_file, env=s.password_env, key="source.password", environ=self.config.environ
        )

    def _open_tunnel(self, ssh: SSHSettings) -> tuple[str, int]:
        src = self.config.source
        if self.tunnel is not None and self.tunnel.is_up() and self.tunnel.local_port is not None:
            return "127.0.0.1", self.tunnel.local_port
        self.close()
        password = read_secret(
            file=ssh.password_file, env=ssh.password_env, key="ssh.password", environ=self.config.environ
        )
        self.tunnel_state = "down"
        self.tunnel = Tunnel.from_config(ssh, src.host, src.port, password).open()
        port = self.tunnel.local_port
        assert port is not None  # open() returns only once the child reported its port
        self.tunnel_state = "up"
        log.info(
            "tunnel up: 127.0.0.1:%s -> %s:%s via %s (compression: %s)",
            port,
            src.host,
            src.port,
            ssh.host,
            self.tunnel.compression,
        )
        return "127.0.0.1", port

    @property
    def statements(self) -> int:
        """Return the statements sent to the source through this link so far."""
        return self._closed_statements + (self._source.statements if self._source else 0)

    def source(self) -> Source:
        """Return a connected, probed source session; raise TunnelError/SourceError if down."""
        t0 = time.monotonic()
        self.open_seconds = 0.0
        try:
            if self.config.ssh is not None:
                tunnel = self.tunnel
                host, port = self._open_tunnel(self.config.ssh)
                if self._source is not None and self._source.port != port:
                    self._close_source()
                opened = self.tunnel is not tunnel
            else:
                host, port = self.config.source.host, self.config.source.port
                opened = False
            if self._source is None:
                s = self.config.source
                url = sa.URL.create(
                    "postgresql+psycopg2",
                    username=s.user,
                    password=self._password(),
                    host=host,
                    port=port,
                    database=s.database,
                    query={"sslmode": s.sslmode},
                )
                self._source = Source(
                    url, s.statement_timeout, s.connect_timeout, where=f"{s.host}:{s.port}/{s.database}"
                )
                self._source.port = port
            if not self._source.connected:
                self._source.connect()
                opened = True
            if opened:  # the pass summary's duration leaves out opening the link (BRIEF 9)
                self.open_seconds = time.monotonic() - t0
            self._source.probe()
            self.database_state = "up"
            return self._source
        except (TunnelError, SecretError):
            self.database_state = "down"
            raise
        except Exception:
            self.database_state = "down"
            if self.tunnel is not None and not self.tunnel.is_up():
                self.tunnel_state = "down"
            self._close_source()
            raise

    def explain(self, error: Exception, wait: float = 1.0) -> Exception:
        """Return the error to report for a statement that failed mid-pass.

        When the tunnel child ended (a cut or a stalled link: it shuts the SSH connection,
        then the forwarded sockets close and the driver sees only "server closed the
        connection"), the child's own reason is the one that says what happened.
        """
        tunnel = self.tunnel
        if not isinstance(error, SourceError) or self.config.ssh is None or tunnel is None:
            return error
        if not tunnel.wait_ended(wait):
            return error
        self.tunnel_state = self.database_state = "down"
        return TunnelError(
            f"{tunnel.exit_reason()}. The bastion {self.config.ssh.host}:"
            f"{self.config.ssh.port} may be down or unreachable."
        )

    def check(self) -> None:
        """Probe cheaply between passes; raise TunnelError/SourceError when down."""
        if self.config.ssh is not None:
            if self.tunnel is None:
                raise TunnelError("the SSH tunnel is not open")
            if not self.tunnel.is_up():
                reason = self.tunnel.exit_reason()
                self.tunnel_state = self.database_state = "down"
                raise TunnelError(
                    f"{reason}. The bastion {self.config.ssh.host}:"
                    f"{self.config.ssh.port} may be down or unreachable."
                )
        if self._source is None:
            raise SourceError("not connected to the source")
        try:
            self._source.probe()
        except SourceError:
            self.database_state = "down"
            self._close_source()
            raise

    def _close_source(self) -> None:
        if self._source is not None:
            self._closed_statements += self._source.statements
            self._source.close()
            self._source.engine.dispose()
            self._source = None

    def close(self) -> None:
        """Close the session and the tunnel."""
        self._close_source()
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        if self.config.ssh is not None:
            self.tunnel_state = "down"

    def __enter__(self) -> SourceLink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FixedLink:
    """A link to an already-built Source (the demo's embedded database, tests)."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self.tunnel_state = "direct"
        self.database_state = "down"
        self.open_seconds = 0.0

    @property
    def statements(self) -> int:
        return self._source.statements

    def source(self) -> Source:
        self._source.probe()
        self.database_state = "up"
        return self._source

    def check(self) -> None:
        self.source()

    def explain(self, error: Exception) -> Exception:
        return error

    def close(self) -> None:
        self._source.close()
