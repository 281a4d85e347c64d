"""Secret and trusted files: regular files only, private or at least not writable by others."""

from __future__ import annotations

import os

import pytest

from appliance.errors import SecretError
from appliance.secrets import check_trusted_file, read_secret


def test_secret_files_a_fifo_is_refused_instead_of_hanging(tmp_path):
    fifo = tmp_path / "password"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretError, match="is not a regular file"):
        read_secret(file=str(fifo), key="source.password")


def test_secret_files_a_directory_is_refused(tmp_path):
    folder = tmp_path / "password"
    folder.mkdir(mode=0o700)
    with pytest.raises(SecretError, match="source.password_file: .* is not a regular file"):
        read_secret(file=str(folder), key="source.password")


def test_secret_files_known_hosts_writable_by_others_is_refused(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("[127.0.0.1]:22 ssh-ed25519 AAAA\n")
    known.chmod(0o666)
    with pytest.raises(SecretError, match=r"can be changed by other users \(mode 666\). Run: chmod go-w"):
        check_trusted_file(str(known), "ssh.known_hosts")
    known.chmod(0o644)
    check_trusted_file(str(known), "ssh.known_hosts")  # readable by all is fine: it is public
