"""--os NAME: the image list (Imager's JSON), download with checks, cache, all on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.flash import download
from appliance.flash.cli import flash
from appliance.flash.errors import ChecksumError, DownloadError


class _Handler(SimpleHTTPRequestHandler):
    """Serves the folder quietly and counts requests per path."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        super().do_GET()


def _os_list(base: str, images: dict, sha: str | None = None, extract: str | None = None) -> dict:
    data = images["data"]
    xz = images["xz"].read_bytes()
    lite = {
        "name": "Raspberry Pi OS Lite (64-bit)",
        "url": f"{base}/pi.img.xz",
        "image_download_size": len(xz),
        "image_download_sha256": sha or hashlib.sha256(xz).hexdigest(),
        "extract_size": len(data),
        "extract_sha256": extract or hashlib.sha256(data).hexdigest(),
        "release_date": "2025-01-01",
    }
    full = dict(lite, name="Raspberry Pi OS (64-bit)", url=f"{base}/missing.img.xz")
    other = {
        "name": "Raspberry Pi OS (other)",
        "subitems": [
            dict(lite, name="Raspberry Pi OS Lite (32-bit)", url=f"{base}/pi32.img.xz"),
        ],
    }
    erase = {"name": "Erase", "url": "internal://format"}
    return {"imager": {}, "os_list": [full, lite, other, erase]}


@pytest.fixture
def server(tmp_path, images, monkeypatch):
    """Serve an image list and an image on 127.0.0.1; return (base URL, folder, hits)."""
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "pi.img.xz").write_bytes(images["xz"].read_bytes())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(folder)))
    httpd.hits = {}
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    (folder / "os_list.json").write_text(json.dumps(_os_list(base, images)))
    monkeypatch.setenv(download.LIST_URL_ENV, f"{base}/os_list.json")
    yield base, folder, httpd.hits
    httpd.shutdown()
    httpd.server_close()


def test_fetch_list_flattens_subitems_and_skips_non_images(server):
    names = [i.name for i in download.fetch_list()]
    assert names == [
        "Raspberry Pi OS (64-bit)",
        "Raspberry Pi OS Lite (64-bit)",
        "Raspberry Pi OS Lite (32-bit)",
    ]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("Raspberry Pi OS Lite (64-bit)", "Raspberry Pi OS Lite (64-bit)"),
        ("raspberry pi os lite 64 bit", "Raspberry Pi OS Lite (64-bit)"),
        ("lite 32", "Raspberry Pi OS Lite (32-bit)"),
        ("Raspberry Pi OS (64-bit)", "Raspberry Pi OS (64-bit)"),
    ],
)
def test_find_matches_exact_names_and_words(server, query, expected):
    assert download.find(download.fetch_list(), query).name == expected


def test_find_lists_the_choices_when_ambiguous_or_unknown(server):
    images = download.fetch_list()
    with pytest.raises(DownloadError, match="matches several images"):
        download.find(images, "lite")
    with pytest.raises(DownloadError, match="matches no image"):
        download.find(images, "ubuntu")


def test_fetch_image_downloads_checks_and_caches(server, tmp_path, images):
    _base, _folder, hits = server
    entry = download.find(download.fetch_list(), "lite 64")
    cache = tmp_path / "cache"
    path = download.fetch_image(entry, str(cache))
    assert Path(path).read_bytes() == images["xz"].read_bytes()
    assert download.fetch_image(entry, str(cache)) == path  # from the cache
    assert hits["/pi.img.xz"] == 1
    assert not list(cache.glob("*.part"))


def test_wrong_sha256_is_an_error_and_nothing_is_kept(server, tmp_path):
    entry = download.find(download.fetch_list(), "lite 64")
    entry.download_sha256 = "0" * 64
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="does not match its published SHA-256"):
        download.fetch_image(entry, str(cache))
    assert list(cache.iterdir()) == []


def test_damaged_cache_entry_is_dropped_and_downloaded_again(server, tmp_path, images):
    _base, _folder, hits = server
    entry = download.find(download.fetch_list(), "lite 64")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "pi.img.xz").write_bytes(b"not the image")
    said = []
    path = download.fetch_image(entry, str(cache), said.append)
    assert Path(path).read_bytes() == images["xz"].read_bytes()
    assert hits["/pi.img.xz"] == 1 and "downloading it again" in said[0]


def test_unreachable_list_says_check_the_network(monkeypatch):
    monkeypatch.setenv(download.LIST_URL_ENV, "http://127.0.0.1:9/os_list.json")
    with pytest.raises(DownloadError, match="check the network"):
        download.fetch_list()


def test_flash_os_downloads_then_writes_a_file_target(server, tmp_path, images):
    target = tmp_path / "card.img"
    result = CliRunner().invoke(flash, ["--os", "lite 64", "--device", str(target), "--yes"])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == images["data"]


def test_flash_os_refuses_an_image_that_does_not_match_the_published_extract_sha(server, tmp_path, images):
    base, folder, _hits = server
    (folder / "os_list.json").write_text(json.dumps(_os_list(base, images, extract="1" * 64)))
    result = CliRunner().invoke(flash, ["--os", "lite 64", "--device", str(tmp_path / "card.img"), "--yes"])
    assert result.exit_code == 1
    assert "is not the published one" in result.output


def test_flash_os_dry_run_downloads_nothing(server, tmp_path):
    _base, _folder, hits = server
    result = CliRunner().invoke(
        flash, ["--os", "lite 64", "--device", str(tmp_path / "card.img"), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "download http://127.0.0.1" in result.output and "check its published SHA-256" in result.output
    assert "/pi.img.xz" not in hits


def test_an_unverifiable_certificate_says_install_certificates_not_check_the_network(tmp_path):
    """python.org's Python on macOS ships no CA certificates: the real TLS failure, on loopback."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(tmp_path)))
    httpd.hits = {}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DownloadError) as failed:
            download.fetch_list(f"https://127.0.0.1:{httpd.server_address[1]}/list.json")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "Install Certificates.command" in str(failed.value)
    assert "check the network" not in str(failed.value)
