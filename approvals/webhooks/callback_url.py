"""Where a delivery may go: an agent's callback URL is checked when it is set and again before every
delivery (http(s) only, and never an address inside our own network unless allowed for development)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from django.conf import settings

from adapters import http


class UnsafeURL(ValueError):
    pass


def _private_allowed() -> bool:
    return bool(getattr(settings, "ACME_WEBHOOK_ALLOW_PRIVATE", settings.DEBUG))


def check_callback_url(url: str) -> str:
    """Only http(s), and (unless allowed for development) never an address inside our own network."""
    try:
        parts = urlsplit(url)
        port = parts.port  # urllib raises ValueError for a port past 65535 or not a number
    except ValueError:
        raise UnsafeURL("The callback URL cannot be parsed (check its host and port).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("The callback URL must be an http:// or https:// URL with a host.")
    if port == 0:
        raise UnsafeURL("The callback URL's port must be between 1 and 65535.")
    if _private_allowed():
        return url
    try:
        infos = socket.getaddrinfo(
            parts.hostname, port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except OSError:
        raise UnsafeURL("The callback URL's host does not resolve.") from None
    if not all(http.is_public_address(str(info[4][0])) for info in infos):
        raise UnsafeURL("The callback URL points into a private network; use a public address.")
    return url
