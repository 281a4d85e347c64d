"""Raspberry Pi OS images by name: the official image list (Imager's JSON), download, cache.

Every download is checked against the list's SHA-256 before use; a mismatch drops the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.flash import progress as progress_mod
from appliance.flash.errors import ChecksumError, DownloadError

LIST_URL = "https://downloads.raspberrypi.com/os_list_imagingutility_v4.json"
LIST_URL_ENV = "APPLIANCE_OS_LIST_URL"
CACHE_ENV = "APPLIANCE_FLASH_CACHE"
CHUNK = 1 << 20
TIMEOUT = 30


@dataclass
class OsImage:
    """One downloadable image of the list."""

    name: str
    url: str
    download_sha256: str = ""
    download_size: int = 0
    extract_sha256: str = ""
    extract_size: int = 0
    release_date: str = ""
    init_format: str = ""  # how Imager customizes it: "systemd" (firstrun.sh) or "cloudinit"

    @property
    def filename(self) -> str:
        """Return the file name in the cache (the last part of the URL)."""
        return os.path.basename(self.url.split("?", 1)[0]) or "image"


def list_url() -> str:
    """Return the image list URL (APPLIANCE_OS_LIST_URL overrides the official one)."""
    return os.environ.get(LIST_URL_ENV) or LIST_URL


def cache_dir() -> str:
    """Return where downloaded images are kept (APPLIANCE_FLASH_CACHE overrides)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/appliance/images")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "appliance", "images")


def _open(url: str):
    """Open url for reading, turning network errors into DownloadError."""
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
            raise DownloadError(certificates_message(url)) from None
        raise DownloadError(
            f"Could not download {url} ({reason}): check the network connection and try again."
        ) from None


def certificates_message(url: str) -> str:
    """Return what to do when this Python cannot verify HTTPS certificates (python.org's)."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return (
        f"Could not download {url}: this Python ({sys.executable}) cannot verify HTTPS "
        "certificates. The network is fine: Python from python.org brings no certificates "
        f'until you run "Install Certificates.command" once: open /Applications/Python {version}/'
        f'Install Certificates.command (or: open "/Applications/Python {version}/Install '
        'Certificates.command"), then run this again.'
    )


def fetch_list(url: str | None = None) -> list[OsImage]:
    """Return every image of the list, with nested "subitems" flattened."""
    url = url or list_url()
    with _open(url) as resp:
        raw = resp.read()
    try:
        items = json.loads(raw)["os_list"]
    except (ValueError, KeyError, TypeError):
        raise DownloadError(f"{url} is not an image list in Imager's format (no os_list).") from None
    return [_image(i) for i in _flatten(items) if _is_image(i)]


def _flatten(items: Iterable[dict]) -> Iterable[dict]:
    """Yield the leaves of the list (categories hold their images in "subitems")."""
    for item in items:
        if isinstance(item, dict):
            yield item
            yield from _flatten(item.get("subitems", []))


def _is_image(item: dict) -> bool:
    """Return True for an entry that downloads an image (not a category or "Erase")."""
    return str(item.get("url", "")).startswith(("http://", "https://", "file:"))


def _image(item: dict) -> OsImage:
    """Return an OsImage from one list entry."""
    return OsImage(
        name=str(item.get("name", "")),
        url=str(item["url"]),
        download_sha256=str(item.get("image_download_sha256", "")).lower(),
        download_size=int(item.get("image_download_size") or 0),
        extract_sha256=str(item.get("extract_sha256", "")).lower(),
        extract_size=int(item.get("extract_size") or 0),
        release_date=str(item.get("release_date", "")),
        init_format=str(item.get("init_format") or ""),
    )


def _words(text: str) -> list[str]:
    """Return the lower-case words of a name: "Raspberry Pi OS Lite (64-bit)" -> [...]."""
    return re.findall(r"[a-z0-9]+", text.lower())


def find(images: list[OsImage], name: str) -> OsImage:
    """Return the image whose name matches: exactly, or the only one holding all the words."""
    exact = [i for i in images if _words(i.name) == _words(name)]
    if len(exact) == 1:
        return exact[0]
    wanted = _words(name)
    matches = [i for i in images if wanted and all(w in _words(i.name) for w in wanted)]
    if len(matches) == 1:
        return matches[0]
    pool = matches or images
    names = "\n".join(f"  {i.name}" for i in pool)
    what = "matches several images" if matches else "matches no image"
    raise DownloadError(f'--os "{name}" {what} of the list; choose one of:\n{names}')


def file_sha256(path: str, desc: str = "Checking") -> str:
    """Return the SHA-256 of a file, with a progress bar."""
    h, bar = hashlib.sha256(), progress_mod.bar(os.path.getsize(path), desc)
    try:
        with open(path, "rb", buffering=0) as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
    return h.hexdigest()


def _download(url: str, dest: str, size: int) -> str:
    """Download url to dest with a progress bar; return the SHA-256 of what arrived."""
    h = hashlib.sha256()
    with _open(url) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or size or 0) or None
        bar = progress_mod.bar(total, "Downloading")
        try:
            for chunk in iter(lambda: resp.read(CHUNK), b""):
                out.write(chunk)
                h.update(chunk)
                bar.update(len(chunk))
        except OSError as exc:
            raise DownloadError(f"The download of {url} broke off ({exc}): run again.") from None
        finally:
            bar.close()
    return h.hexdigest()


def fetch_image(image: OsImage, cache: str | None = None, say=lambda msg: None) -> str:
    """Return the path of the image in the cache, downloading it first if needed."""
    if not image.download_sha256:
        raise ChecksumError(
            f"The image list gives no SHA-256 for {image.name}, so a download could not be "
            "checked: download it yourself and pass it with --image."
        )
    directory = cache or cache_dir()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, image.filename)
    if os.path.exists(path):
        if file_sha256(path, "Checking cached image") == image.download_sha256:
            return path
        os.remove(path)  # damaged or replaced upstream: drop it and fetch it afresh
        say(f"The cached {image.filename} did not match its SHA-256; downloading it again.")
    part = path + ".part"
    try:
        sha = _download(image.url, part, image.download_size)
    except BaseException:
        _remove(part)
        raise
    if sha != image.download_sha256:
        _remove(part)
        raise ChecksumError(
            f"The download of {image.url} does not match its published SHA-256 "
            f"(expected {image.download_sha256}, got {sha}): it was damaged or altered on the "
            "way. It was deleted; run the command again to download it afresh."
        )
    os.replace(part, path)
    return path


def _remove(path: str) -> None:
    """Delete path if it exists."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
