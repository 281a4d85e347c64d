"""Checks on a loaded config that go beyond its syntax: secrets present and private."""

from __future__ import annotations

import os
import stat

from ..errors import SecretError
from ..secrets import check_private_file, check_trusted_file, read_secret
from . import Config, Problem


def secret_problems(config: Config) -> list[Problem]:
    """Return one Problem per secret that is missing, unreadable or readable by others."""
    problems = []
    checks = [("source.password", config.source.password_file, config.source.password_env)]
    if config.ssh is not None:
        ssh = config.ssh
        checks.append(("ssh.password", ssh.password_file, ssh.password_env))
        if ssh.key_file:
            try:
                check_private_file(ssh.key_file, "ssh.key_file")
            except SecretError as e:
                problems.append(_problem("ssh.key_file", e))
        if not os.path.exists(ssh.known_hosts):
            problems.append(
                Problem(
                    "ssh.known_hosts",
                    f"{ssh.known_hosts} does not exist",
                    f"pin the bastion's key: ssh-keyscan -p {ssh.port} {ssh.host} > {ssh.known_hosts}",
                )
            )
        else:
            try:
                check_trusted_file(ssh.known_hosts, "ssh.known_hosts")
            except SecretError as e:
                problems.append(_problem("ssh.known_hosts", e))
    token = config.web.api_token_file
    if token and os.path.exists(token):
        problem = _token_problem(token)
        if problem is not None:
            problems.append(problem)
    for key, file, env in checks:
        try:
            read_secret(file=file, env=env, key=key, environ=config.environ)
        except SecretError as e:
            problems.append(_problem(str(e).partition(": ")[0], e))
    return problems


def _problem(key: str, error: SecretError) -> Problem:
    """Return the error as a Problem, its "Run: ..." command as the fix."""
    message = str(error).partition(": ")[2]
    message, _, command = message.partition(" Run: ")
    return Problem(key, message, f"run: {command}" if command else "")


def _token_problem(path: str) -> Problem | None:
    """Return what the page would refuse in its token file, as far as any user can tell.

    The page reads it as its own user (install-on-pi: root:appliance-web, 0640); whoever runs
    `config check` can still see a file that is not regular or that everyone may read.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return Problem("web.api_token_file", f"{path} is not a regular file", "point it at the token file")
    if stat.S_IMODE(st.st_mode) & 0o007:
        return Problem(
            "web.api_token_file",
            f"{path} is readable by every user (mode {stat.S_IMODE(st.st_mode):o}): the page refuses it",
            f"run: chmod 600 {path} (or chown root:appliance-web {path} && chmod 640 {path})",
        )
    return None
