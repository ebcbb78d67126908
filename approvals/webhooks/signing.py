"""How a delivery is signed: ``X-Acme-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
with a per-agent secret derived from SECRET_KEY; ``verify`` is what a receiver does."""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

from approvals.inbound import TOLERANCE
from approvals.models import AgentCredential

SIGNATURE_HEADER = "X-Acme-Signature"


def secret_for(agent: AgentCredential) -> str:
    """The agent's signing secret, derived from SECRET_KEY (so it is never stored); rotate by bumping
    ``webhook_secret_version``."""
    material = f"acme-webhook:{agent.pk}:{agent.webhook_secret_version}".encode()
    return "whsec_" + hmac.new(settings.SECRET_KEY.encode(), material, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: int = TOLERANCE
) -> bool:
    """What a receiver does (documented in the README): check the timestamp window, then the HMAC."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
