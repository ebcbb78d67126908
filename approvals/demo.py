"""The demo tenant's accounts: what ``seed_demo`` creates, which of them are still usable, how to retire them.

The demo accounts' password is printed in the README, so they belong to development only (DEBUG on):
``seed_demo`` refuses to run otherwise, ``check --deploy`` (approvals.checks) names any of them still active
in a production database, and ``manage.py remove_demo`` deactivates them.

A demo account is one of these, found by name in the demo tenant (a database seeded by an earlier release,
before any of this, is recognised the same way):

- the people ``reviewer``, ``admin`` and ``alice`` who are members of tenant ``acme``;
- the agent ``demo-agent`` of tenant ``acme``;
- the API tokens named ``demo`` of those people.

Demo tokens survive restarts: only their hashes are in the database, so ``seed_demo`` keeps the raw tokens
it issued in ``<ACME_VAR_DIR>/demo_tokens.json`` (mode 0600, under the gitignored ``var/``) and shows them
again on the next start while they still match; it issues a new one only when the kept one no longer works.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from approvals.models import AgentCredential, Membership, UserToken
from approvals.tokens import hash_token
from audit import services as audit
from audit.services import Where

DEMO_TENANT = "acme"
DEMO_USERS = ("reviewer", "admin", "alice")
DEMO_AGENT = "demo-agent"
DEMO_TOKEN_NAME = "demo"  # noqa: S105 (the name of a token row, not a secret)
TOKENS_FILE = "demo_tokens.json"

REMOVE_HINT = (
    "Deactivate every demo account with `python manage.py remove_demo` (or untick 'Active' on each in the "
    "Django admin), then create your own people with createsuperuser / create_reviewer."
)


@dataclass(frozen=True)
class DemoAccount:
    kind: str  # "user", "agent" or "token"
    name: str
    pk: int

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


def demo_accounts(*, active_only: bool = True) -> list[DemoAccount]:
    """The demo accounts in the database (by default only those still able to sign in or call the API)."""
    members = Membership.objects.filter(tenant__slug=DEMO_TENANT, user__username__in=DEMO_USERS)
    users = get_user_model().objects.filter(pk__in=members.values("user_id")).order_by("username")
    agents = AgentCredential.objects.filter(tenant__slug=DEMO_TENANT, name=DEMO_AGENT)
    tokens = (
        UserToken.objects.filter(user__in=users, name=DEMO_TOKEN_NAME).select_related("user").order_by("pk")
    )
    if active_only:
        users, agents, tokens = (
            users.filter(is_active=True),
            agents.filter(is_active=True),
            tokens.filter(is_active=True),
        )
    return [
        *(DemoAccount("user", u.get_username(), u.pk) for u in users),
        *(DemoAccount("agent", f"{DEMO_TENANT}/{a.name}", a.pk) for a in agents),
        *(
            DemoAccount("token", f"{t.user.get_username()}/{t.name} ({t.token_prefix}…)", t.pk)
            for t in tokens
        ),
    ]


def demo_accounts_deactivate(*, where: Where) -> list[DemoAccount]:
    """Deactivate every active demo account (people: also an unusable password); return those changed.

    Deactivated, not deleted: the proposals, decisions and audit events that name them stay whole."""
    user_model = get_user_model()
    with transaction.atomic():
        found = demo_accounts()
        for account in found:
            if account.kind == "user":
                user = user_model.objects.select_for_update().get(pk=account.pk)
                user.is_active = False
                user.set_unusable_password()
                user.save(update_fields=["is_active", "password"])
            elif account.kind == "agent":
                AgentCredential.objects.filter(pk=account.pk).update(is_active=False)
            else:
                UserToken.objects.filter(pk=account.pk).update(is_active=False)
            audit.record(
                tenant=DEMO_TENANT,
                actor=audit.SYSTEM,
                action="demo.deactivated",
                where=where,
                subject_type=account.kind,
                subject_id=str(account.pk),
                data={"name": account.name},
            )
    return found


# --- the raw demo tokens, kept between starts (development only) ---------------------------------------


def _tokens_path() -> Path:
    return Path(settings.VAR_DIR) / TOKENS_FILE


def kept_tokens() -> dict[str, str]:
    try:
        data: Any = json.loads(_tokens_path().read_text())
    except (OSError, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(data, dict)
        else {}
    )


def keep_tokens(tokens: dict[str, str]) -> None:
    path = _tokens_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private file and renamed over the old one: never a half-written file, never
    # readable by other users of the machine.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(tokens, out)
    os.replace(tmp, path)


def agent_token_valid(token: str | None) -> bool:
    return (
        bool(token)
        and AgentCredential.objects.filter(
            tenant__slug=DEMO_TENANT, name=DEMO_AGENT, token_hash=hash_token(token or ""), is_active=True
        ).exists()
    )


def user_token_valid(token: str | None, *, user: Any) -> bool:
    return (
        bool(token)
        and UserToken.objects.filter(
            user=user, name=DEMO_TOKEN_NAME, token_hash=hash_token(token or ""), is_active=True
        ).exists()
    )
