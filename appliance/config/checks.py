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
                problems.append(Problem("ssh.key_file", str(e).split(": ", 1)[1]))
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
                problems.append(Problem("ssh.known_hosts", str(e).split(": ", 1)[1]))
    for key, file, env in checks:
        try:
            read_secret(file=file, env=env, key=key, environ=config.environ)
        except SecretError as e:
            name, _, message = str(e).partition(": ")
            problems.append(Problem(name, message))
    return problems
