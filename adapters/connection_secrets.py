"""How a connection's token and signing secret are kept: encrypted with ``ACME_SECRETS_KEY``.

``cryptography``'s MultiFernet over comma-separated Fernet keys: the first encrypts, all decrypt, so a key is
rotated by putting a new one first. With DEBUG on and no key, a development key is derived from
``SECRET_KEY`` (HKDF), so ``make run`` works with nothing configured; with DEBUG off a missing or malformed
key is an ``ImproperlyConfigured`` that says how to generate one. Nothing here logs or keeps a clear value:
``adapters.connections.Resolved`` decrypts at call time only.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

GENERATE_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
KEY_REQUIRED = (
    "ACME_SECRETS_KEY must be set to store or use a connection's token while DEBUG is off. Generate a key with: "
    + GENERATE_KEY
)
KEY_INVALID = (
    "ACME_SECRETS_KEY must be comma-separated Fernet keys (32 url-safe base64-encoded bytes). Generate one with: "
    + GENERATE_KEY
)
UNDECRYPTABLE = (
    "A stored connection secret cannot be decrypted with ACME_SECRETS_KEY (a key was removed before the secrets "
    "were re-encrypted?). Put the old key back after the new one, or set the connection again."
)


def _dev_key() -> bytes:
    # DEBUG only: a stable key per SECRET_KEY, so `make run` works with nothing configured. HKDF rather than a
    # bare hash: SECRET_KEY has other uses, and the derived key must say nothing about it.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"acme-connection-secrets").derive(
        settings.SECRET_KEY.encode()
    )
    return base64.urlsafe_b64encode(derived)


def configured_keys() -> list[str]:
    raw = getattr(settings, "ACME_SECRETS_KEY", "") or ""
    return [part.strip() for part in raw.split(",") if part.strip()]


def fernet() -> MultiFernet:
    """The keys from ``ACME_SECRETS_KEY``; raises ImproperlyConfigured when missing (DEBUG off) or malformed."""
    keys = configured_keys()
    if not keys:
        if not settings.DEBUG:
            raise ImproperlyConfigured(KEY_REQUIRED)
        return MultiFernet([Fernet(_dev_key())])
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(KEY_INVALID) from None


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(UNDECRYPTABLE) from None
