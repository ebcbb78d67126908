"""Login throttling for the reviewer login (``/accounts/login/``) and the admin login (``/admin/login/``).

After ``ACME_LOGIN_MAX_FAILURES`` failed attempts for one username from one IP address within
``ACME_LOGIN_WINDOW`` seconds, that pair is refused — even with the right password — until the window
(counted from the first failure) ends. A success clears the count. The counters live in Redis
(``adapters.redis``), so every web process shares them; nothing is kept in process memory.

Keyed on username *and* IP so that an attacker cannot lock a person out from everywhere by guessing at
their name (the person's own address keeps working), while one address cannot grind through passwords.
If Redis cannot be reached the login works unthrottled (and says so in the log): the password check
itself does not depend on Redis, and locking everyone out during a Redis outage would be worse.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import redis
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse

from adapters.redis import get_redis, key
from audit.where import client_ip

logger = logging.getLogger(__name__)

TOO_MANY_ATTEMPTS = "Too many failed login attempts. Try again in {minutes} minutes."
THROTTLED = "throttled"
# One failure more; the window starts at the first one (EXPIRE ... NX needs Redis 7; the embedded one is 6).
_COUNT_FAILURE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


def _limits() -> tuple[int, int]:
    return int(getattr(settings, "ACME_LOGIN_MAX_FAILURES", 5)), int(
        getattr(settings, "ACME_LOGIN_WINDOW", 900)
    )


def _key(username: str, ip: str) -> str:
    # Hashed: a username (PII) never appears in a Redis key.
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return key("login-failures", digest, ip or "-")


def _ip(request: Any) -> str:
    # The client's address, X-Forwarded-For believed only through ACME_TRUSTED_PROXIES: behind the TLS proxy
    # every client would otherwise share the proxy's address (and one client's failures lock out all).
    return client_ip(request) or ""


def seconds_locked(username: str, ip: str) -> int:
    """0 when a login may be tried; else the seconds until it may."""
    limit, _ = _limits()
    try:
        client = get_redis()
        failures = int(client.get(_key(username, ip)) or 0)
        return max(int(client.ttl(_key(username, ip))), 1) if failures >= limit else 0
    except redis.RedisError:
        logger.warning("login throttle: Redis unavailable, not throttling")
        return 0


def record_failure(username: str, ip: str) -> None:
    _, window = _limits()
    try:
        get_redis().eval(_COUNT_FAILURE, 1, _key(username, ip), window)
    except redis.RedisError:
        logger.warning("login throttle: Redis unavailable, failure not counted")


def clear(username: str, ip: str) -> None:
    try:
        get_redis().delete(_key(username, ip))
    except redis.RedisError:
        pass


class ThrottledFormMixin:
    """For an AuthenticationForm: refuse a throttled username+IP before the password is even checked."""

    request: Any
    error_messages: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = self.cleaned_data  # type: ignore[attr-defined]
        username, ip = data.get("username") or "", _ip(self.request)
        wait = seconds_locked(username, ip)
        if wait:
            raise forms.ValidationError(
                TOO_MANY_ATTEMPTS.format(minutes=max(1, (wait + 59) // 60)), code=THROTTLED
            )
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            if username:
                record_failure(username, ip)
            raise
        clear(username, ip)
        return cleaned


class ThrottledAuthenticationForm(ThrottledFormMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledFormMixin, AdminAuthenticationForm):
    pass


def is_throttled(form: forms.Form) -> bool:
    return any(error.code == THROTTLED for error in form.non_field_errors().as_data())


class ThrottledLoginView(auth_views.LoginView):
    """Django's LoginView with the throttled form; a refused attempt is the form with the error, as 429."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if is_throttled(form):
            response.status_code = 429
        return response
