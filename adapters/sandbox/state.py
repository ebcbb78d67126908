"""The sandbox's in-memory world, guarded by one lock (the server is threaded)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

SEED_USERS = [
    {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "role": "end-user"},
    {"id": 2, "name": "Grace Hopper", "email": "grace@example.com", "role": "end-user"},
    {"id": 3, "name": "Support Agent", "email": "agent@acme.example", "role": "agent"},
]
SEED_CHANNELS = {"C0GENERAL1": "general", "C0SUPPORT1": "support", "C0ALERTS01": "alerts"}


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Store:
    crm_token: str
    slack_token: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[tuple[str, str], tuple[str, Reply]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    next_ticket_id: int = 1
    next_user_id: int = 100
    next_comment_id: int = 1
    last_ts: float = 0.0
    # False: a PUT ignores Idempotency-Key, as a real Zendesk does (``POST /_sandbox/config``).
    put_idempotency: bool = True
    # False: chat.postMessage ignores Idempotency-Key, as the real Slack does (``POST /_sandbox/config``).
    slack_idempotency: bool = True

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tickets.clear()
            self.users.clear()
            self.users.update(
                {u["id"]: {**u, "created_at": "2024-01-01T00:00:00Z"} for u in SEED_USERS}  # type: ignore[misc]
            )
            self.messages.clear()
            self.idempotency.clear()
            self.faults.clear()
            self.requests.clear()
            self.next_ticket_id = 1
            self.next_user_id = 100
            self.next_comment_id = 1
            self.put_idempotency = True
            self.slack_idempotency = True

    def take_fault(self, target: str, method: str, path: str) -> dict[str, Any] | None:
        """The first armed fault for ``target`` ("crm"/"slack"; a fault's "*" matches both) and, when the
        fault names them, this ``method`` and ``path``; used once."""
        with self.lock:
            for fault in self.faults:
                if (
                    fault["target"] in (target, "*")
                    and fault.get("method") in (None, method)
                    and fault.get("path") in (None, path)
                    and fault["count"] > 0
                ):
                    fault["count"] -= 1
                    if fault["count"] == 0:
                        self.faults.remove(fault)
                    return dict(fault)
        return None
