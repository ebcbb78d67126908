"""API tokens: random, shown once, stored as sha256 (a token has 256 bits of entropy, so a fast hash is
enough; a slow password hash would only slow every request)."""

from __future__ import annotations

import hashlib
import secrets


def new_token(kind: str) -> str:
    return f"{kind}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def prefix(token: str) -> str:
    return token[:12]
