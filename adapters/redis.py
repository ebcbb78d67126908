"""The integration layer's Redis: breaker and rate-limit state shared by every web and worker process.

Nothing here keeps state in process memory except the client (a connection pool), cached per URL so a
settings override (tests) or a fork (RQ's work horse; redis-py's pool notices the new pid) is respected.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings

# Every key we write starts with this prefix, so tests (and several deployments sharing one Redis) can
# keep their keys apart and delete exactly their own.
DEFAULT_PREFIX = "acme:"


@functools.lru_cache(maxsize=8)
def client_for(url: str) -> redis.Redis:
    """This process's client (one connection pool) for ``url``; bytes in, bytes out."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


def get_redis() -> redis.Redis:
    """The shared client for ``settings.REDIS_URL`` (bytes in, bytes out)."""
    return client_for(settings.REDIS_URL)


def key(*parts: str) -> str:
    """A namespaced key: ``key("breaker", "crm")`` -> ``"acme:breaker:crm"``."""
    prefix = getattr(settings, "ACME_REDIS_PREFIX", DEFAULT_PREFIX)
    return prefix + ":".join(parts)
