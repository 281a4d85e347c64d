"""Fixtures for the image tests; they live in image_support.py so tests can import its helpers
under a name no other test folder uses (every folder's conftest.py is a module `conftest`)."""

from image_support import (  # noqa: F401 - pytest finds fixtures imported here
    _tools,
    bookworm,
    full_options,
    image_cache,
    secrets,
    site,
    trixie,
)
from wheelhouse_support import appliance_wheel, pi_wheels  # noqa: F401
