"""Where a connection may point: its base URL checked and normalized before it is stored.

``normalize_base_url`` accepts http(s) URLs with a host and no credentials, query or fragment, and writes
them one way (scheme and host lower-cased, no trailing slash), so that two tenants' connections to the same
CRM compare equal (``adapters.connections`` calls such a connection *shared*). ``check_public`` refuses a
URL whose host resolves to any address that is not public (``adapters.outbound_guard``), unless
``ACME_CONNECTIONS_ALLOW_PRIVATE`` (default DEBUG) allows private networks; the calls check again at each
connection (DNS rebinding). ``InvalidConnection`` is the refusal ``connection_set`` raises, a sentence for
the operator.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

NOT_PUBLIC = (
    "The base URL's host must resolve to public addresses only (not loopback, private, link-local or other "
    "internal ranges); set ACME_CONNECTIONS_ALLOW_PRIVATE=1 if this CRM or Slack really lives in your network."
)
UNRESOLVED = "The base URL's host does not resolve."


class InvalidConnection(ValueError):
    """``connection_set`` refused its input (a sentence for the operator)."""


def normalize_base_url(url: str) -> str:
    """Scheme and host lower-cased, no trailing slash; http(s) only, no credentials, query or fragment."""
    parts = urlsplit((url or "").strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidConnection("The base URL must be an http:// or https:// URL with a host.")
    if parts.username or parts.password:
        raise InvalidConnection("The base URL must not carry credentials; pass the token with --token.")
    if parts.query or parts.fragment:
        raise InvalidConnection("The base URL must not have a query or a fragment.")
    netloc = parts.hostname.lower() + (f":{parts.port}" if parts.port else "")
    if ":" in parts.hostname:  # an IPv6 literal keeps its brackets
        netloc = f"[{parts.hostname.lower()}]" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def private_allowed() -> bool:
    """Whether connections may point into private networks (``ACME_CONNECTIONS_ALLOW_PRIVATE``, default DEBUG)."""
    return bool(getattr(settings, "ACME_CONNECTIONS_ALLOW_PRIVATE", settings.DEBUG))


def check_public(url: str) -> None:
    """Refuse a base URL whose host resolves to any address that is not public (``http.is_public_address``),
    unless private addresses are allowed. The calls check again at each connection (DNS rebinding)."""
    from adapters import http

    if private_allowed():
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise InvalidConnection(UNRESOLVED) from None
    if not infos or not all(http.is_public_address(str(info[4][0])) for info in infos):
        raise InvalidConnection(NOT_PUBLIC)


def default_base_url(system: str) -> str:
    url = settings.CRM_BASE_URL if system == "crm" else settings.SLACK_API_URL
    try:
        return normalize_base_url(str(url))
    except InvalidConnection:
        return str(url).rstrip("/")
