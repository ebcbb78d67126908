"""Where a request came from: the client's address (behind trusted proxies only) and the audit ``Where``.

``client_ip(request)`` is the one place a client address is taken from a request: the login throttle, the
audit trail (``where_from``, hence ``Decision.ip``) and django-auditlog's entries all use it.

The address is the TCP peer (``REMOTE_ADDR``) unless that peer is one of ``ACME_TRUSTED_PROXIES``; only
then is ``X-Forwarded-For`` read, from the right, skipping every hop that is itself a trusted proxy: the
first hop that is not is the client. Anything left of it was written by the client and is ignored. With
``ACME_TRUSTED_PROXIES`` unset no header is ever read, so a forged ``X-Forwarded-For`` changes nothing.

Entries are addresses or CIDR ranges (``10.0.0.1``, ``10.0.0.0/8``, ``fd00::/8``). django-ipware parses
the header (ports, brackets, IPv4-mapped IPv6, RFC 7239 tokens, malformed hops); its ``get_client_ip`` is
not used for the decision because its trust model is not ours: it never checks that the *peer* is a
trusted proxy (a client connecting directly could send ``X-Forwarded-For: <anyone>, <proxy>`` and be
believed), its ``proxy_trusted_ips`` is an exact ordered suffix of the header rather than a set of
proxies (the proxy talking to us is ``REMOTE_ADDR``, which standard proxies such as nginx do not put in
the header), and its default header list reads a dozen headers any client can set (``X-Real-IP``,
``CF-Connecting-IP``...). The walk below is the usual "rightmost untrusted hop" rule, a few lines.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from auditlog.middleware import AuditlogMiddleware as _AuditlogMiddleware
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from python_ipware.modern.parsers import parse_ip, split_proxy_chain

from audit.services import Where

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
BAD_PROXY = "ACME_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR range"


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ImproperlyConfigured(BAD_PROXY.format(entry=entry)) from exc
        # An IPv4-mapped IPv6 range matches the IPv4 hops ipware unwraps it to.
        if (
            isinstance(network, ipaddress.IPv6Network)
            and network.prefixlen >= 96
            and network.network_address.ipv4_mapped
        ):
            network = ipaddress.ip_network(
                (int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96), strict=False
            )
        networks.append(network)
    return tuple(networks)


def trusted_proxies() -> tuple[Network, ...]:
    value = getattr(settings, "ACME_TRUSTED_PROXIES", None) or ()
    if isinstance(value, str):
        value = value.split(",")
    return _networks(tuple(value))


def _is_proxy(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: tuple[Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in proxies)


def client_ip(request: Any) -> str | None:
    """The client's address, normalized (``None`` when there is none, e.g. a request built by hand)."""
    if request is None:
        return None
    peer = parse_ip(request.META.get("REMOTE_ADDR"))
    if peer is None:
        return None
    proxies = trusted_proxies()
    if not proxies or not _is_proxy(peer, proxies):
        return str(peer)
    # strict: one malformed hop makes the whole header untrustworthy; then the proxy is all we know.
    hops = split_proxy_chain(request.META.get("HTTP_X_FORWARDED_FOR"), strict=True) or []
    client = peer
    for hop in reversed(hops):
        client = hop
        if not _is_proxy(hop, proxies):
            break
    return str(client)


def where_from(request: Any, *, channel: str = "web") -> Where:
    """The audit ``Where`` of a request: its channel, the client's address and its user agent."""
    return Where(
        channel=channel,
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:256],
    )


class AuditlogMiddleware(_AuditlogMiddleware):
    """django-auditlog's middleware, with the client address taken as above: its own reads the first hop
    of ``X-Forwarded-For`` whoever sent it."""

    @staticmethod
    def _get_remote_addr(request: Any) -> str | None:
        if getattr(settings, "AUDITLOG_DISABLE_REMOTE_ADDR", False):
            return None
        return client_ip(request)
