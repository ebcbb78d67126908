"""The outbound guard: connect only to public addresses, checked at each connection.

For URLs a caller chose (an agent's webhook, a tenant admin's connection base URL): an address check made
before the request cannot stop a host whose DNS answers a public address to the check and ``127.0.0.1`` to
the connection (DNS rebinding), so the check is the connection's own resolution (``_PublicOnlyConnection``,
mounted by ``adapters.sessions.public_only_session``). ``is_public_address`` is the rule, also asked by the
checks made before (``approvals.webhooks``, ``adapters.connections``). ``adapters.http`` re-exports it.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.util.connection

# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix (RFC 6052) and
# its local-use prefix (RFC 8215). A gateway translating them connects to that IPv4 address.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def _unwrapped(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses a packet to ``ip`` really reaches: the IPv4 address inside an IPv4-mapped, 6to4 or
    NAT64 IPv6 address; both ends (server and client) of a Teredo one; else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    if any(ip in net for net in _NAT64):
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return [ip]


def is_public_address(address: str) -> bool:
    """An address on the public internet, by ``ipaddress``'s ``is_global`` (IANA's special-purpose
    registries: private, shared 100.64.0.0/10, loopback, link-local, documentation...), after unwrapping an
    IPv4 address carried inside IPv6 (mapped, 6to4, Teredo, NAT64): ``2002:a9fe:a9fe::`` is
    169.254.169.254. Python 3.11's ``is_global`` still says yes to IPv6 site-local (fec0::/10), multicast
    and the IPv4-compatible ``::/96`` addresses (reserved), so those are refused by name."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope ("fe80::1%eth0") is not an address
    return all(
        inner.is_global
        and not (inner.is_multicast or inner.is_reserved or inner.is_unspecified or inner.is_private)
        and not (isinstance(inner, ipaddress.IPv6Address) and inner.is_site_local)
        for inner in _unwrapped(ip)
    )


class _PublicOnlyConnection:
    """urllib3 connection mixin: resolve the host once, refuse if any of its addresses is not public, and
    connect to those vetted addresses. A check made before the request (``approvals.webhooks``) cannot stop
    a host whose DNS answers a public address to the check and ``127.0.0.1`` to the connection (DNS
    rebinding); this check is the connection's own resolution. TLS still names and verifies the host."""

    _dns_host: str
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses or not all(is_public_address(a) for a in addresses):
            raise urllib3.exceptions.NewConnectionError(
                self,  # type: ignore[arg-type]
                f"{self.host} resolves to an address that is not public; nothing was sent",
            )
        error: OSError | None = None
        for address in addresses:
            try:
                return urllib3.util.connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise urllib3.exceptions.ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out"
                ) from exc
            except OSError as exc:
                error = exc
        raise urllib3.exceptions.NewConnectionError(self, f"Failed to establish a new connection: {error}")  # type: ignore[arg-type]


class _PublicHTTPConnection(_PublicOnlyConnection, urllib3.connection.HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnlyConnection, urllib3.connection.HTTPSConnection):
    pass


class _PublicHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}
