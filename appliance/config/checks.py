"""Checks on a loaded config that go beyond its syntax: secrets present and private."""

from __future__ import annotations

import os

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
