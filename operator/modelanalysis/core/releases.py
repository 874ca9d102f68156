"""Triton's two version numbers: NVIDIA's monthly container release (24.08-py3, what `--triton-version` and the
operator's images name) and the server's own version (2.49.0, what `/v2` server metadata answers).

Since release 22.01 (server 2.18.0) every monthly release has raised the server's minor version by one, so one
gives the other. Older releases did not follow a rule: for them nothing is inferred.
"""

from __future__ import annotations

import re

RELEASE = re.compile(r"^(\d{2})\.(\d{2})(?:-.*)?$")
FIRST_REGULAR = (22, 1, 18)  # release 22.01 shipped server 2.18.0


def server_version_of(release: str) -> str | None:
    """The server version a container release holds ("24.08-py3" -> "2.49.0"), or None where it is not known."""
    found = RELEASE.match(release.strip())
    if not found:
        return None
    year, month = int(found.group(1)), int(found.group(2))
    first_year, first_month, first_minor = FIRST_REGULAR
    months = (year - first_year) * 12 + (month - first_month)
    if months < 0 or not 1 <= month <= 12:
        return None
    return f"2.{first_minor + months}.0"


def version_mismatch(asked: str, server: str, image_release: str = "", image_server: str = "") -> str | None:
    """A sentence when what ran is not the release asked for, else None. `server` is what `/v2` answered;
    `image_release` and `image_server` what the image says it holds (NVIDIA's images set
    NVIDIA_TRITON_SERVER_VERSION and TRITON_SERVER_VERSION), where known."""
    asked_release = asked.split("-", 1)[0]
    if image_release and image_release != asked_release:
        return (
            f"Triton {asked} was asked for, but the image that ran holds release {image_release} (server "
            f"{server or image_server or 'unknown'}): the results are recorded as measured on that server; name the "
            f"matching image with --triton-docker-image, or leave it out to run {asked}."
        )
    expected = image_server or server_version_of(asked)
    if not server or not expected or server == expected:
        return None
    return (
        f"Triton {asked} was asked for (server {expected}), but the server that ran reports {server}: the results "
        f"are recorded as measured on {server}; start the matching server (or image) to measure {asked}."
    )
