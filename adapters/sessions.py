"""The sessions of the HTTP door (``adapters.http``): a mandatory timeout, no redirects, the environment's
proxy and CA settings read once, no cookies kept; one kept per thread and process so its connection pool is
reused. ``adapters.http`` re-exports ``make_session`` and ``public_only_session``.
"""

from __future__ import annotations

import http.cookiejar
import os
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.utils
from django.conf import settings

from adapters.outbound_guard import _PublicOnlyAdapter

USER_AGENT = "acme-integration-gateway/1.0"


class _Session(requests.Session):
    """A session that cannot forget a timeout or follow a redirect (a redirect could carry our bearer
    token to another host, and a write must never be silently re-sent as a GET).

    It reads the environment's proxy and CA settings once, not on every call. requests' own
    ``trust_env`` reads them per request: ``HTTP(S)_PROXY``/``NO_PROXY`` by walking all of ``os.environ``
    (0.2 to 0.9 ms of CPU a call here, more with a large environment), and ``~/.netrc``, whose
    credentials would *replace* the ``Authorization`` header we set. So ``trust_env`` is off and the same
    settings are resolved here: the CA bundle (``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``) when the
    session is made, and the proxies (honouring ``NO_PROXY``) once per scheme and host. ``.netrc`` is
    never read: every downstream is authenticated by the token its adapter sends."""

    _MAX_HOSTS = 64  # proxies remembered per session (downstreams are a handful; webhooks use their own)

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._env_proxies: dict[str, dict[str, str]] = {}

    def proxies_for(self, url: str) -> dict[str, str]:
        """The environment's proxies for ``url`` (``{}`` when ``NO_PROXY`` covers its host)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        proxies = self._env_proxies.get(origin)
        if proxies is None:
            if len(self._env_proxies) >= self._MAX_HOSTS:
                self._env_proxies.clear()
            proxies = self._env_proxies[origin] = requests.utils.get_environ_proxies(url)
        return proxies

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", float(settings.ACME_HTTP_TIMEOUT))
        kwargs["allow_redirects"] = False
        if kwargs.get("proxies") is None:
            kwargs["proxies"] = self.proxies_for(url)
        return super().request(method, url, *args, **kwargs)


def make_session() -> requests.Session:
    session = _Session()
    session.headers["User-Agent"] = USER_AGENT
    # Nothing a downstream sets in a cookie is sent back: every call is authenticated by its own headers,
    # and a kept session (``_pooled_session``) must not carry one call's state into the next.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def public_only_session() -> requests.Session:
    """A session (``make_session``) that connects only to public addresses, checked at each connection:
    for URLs that callers choose (agents' webhook URLs). Through a proxy, the proxy resolves and connects,
    and is the place for that rule."""
    session = make_session()
    adapter = _PublicOnlyAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_pool = threading.local()


def _pooled_session(*, public_only: bool = False) -> requests.Session:
    """This thread's session, kept between calls so that its connection pool is reused: against a real
    CRM or Slack, a new session per call would pay a TCP and TLS handshake on every commit. One per
    thread (a requests.Session is not documented as thread-safe) and per process (a session inherited
    across a fork would share its sockets with the parent). urllib3 replaces a pooled connection the
    server has closed before reusing it; a connection that drops mid-request is an attempt that failed
    like any other, retried with the same Idempotency-Key."""
    name = "public_session" if public_only else "session"
    session: requests.Session | None = getattr(_pool, name, None)
    if session is None or getattr(_pool, f"{name}_pid", None) != os.getpid():
        session = public_only_session() if public_only else make_session()
        setattr(_pool, name, session)
        setattr(_pool, f"{name}_pid", os.getpid())
    return session
