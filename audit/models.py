from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One thing that happened, recorded in the same transaction as the change it describes.

    Append-only: the admin is read-only, and a trigger refuses UPDATE and DELETE (PostgreSQL and SQLite).
    Each row carries the hash of the previous row of its tenant (``prev_hash``) and its own ``hash``
    over its content, so ``manage.py audit_verify`` can name the first row that was altered.

    Fields:
    * ``tenant`` — slug of the tenant the event belongs to ('' for events of no tenant).
    * ``actor_type`` / ``actor_id`` / ``actor_label`` — who acted: a person (``user``, their user id and
      username), an agent (``agent``, its credential id and name) or the product itself (``system``,
      e.g. the worker committing an approved proposal). The acting party, never the one acted upon.
    * ``action`` — what happened, dotted: ``proposal.submitted``, ``proposal.approved``,
      ``outbound.call``, ``proposal.committed``...
    * ``subject_type`` / ``subject_id`` — what it happened to (``proposal`` and its UUID, say).
    * ``at`` — when (UTC), set by the database clock of the writing process.
    * ``channel`` / ``ip`` / ``user_agent`` — where from: ``api`` (REST), ``web`` (reviewer UI or
      admin), ``worker`` (RQ job) or ``cli`` (management command), with the client's address and agent.
    * ``result`` — ``ok``, ``denied``, ``error``, ``deferred``... ; ``data`` holds details (never tokens,
      never the args themselves: they stay on the proposal, the event carries their hash).
    * ``decision_id`` — the human confirmation this event rests on (a Decision id), when there is one.
    * ``args_hash`` — sha256 of the normalized args concerned, so what was approved and what was sent
      can be matched months later.
    """

    tenant = models.CharField(max_length=64, db_index=True, blank=True)
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    subject_type = models.CharField(max_length=32, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField()
    channel = models.CharField(max_length=16)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    result = models.CharField(max_length=16, default="ok")
    data = models.JSONField(default=dict, blank=True)
    decision_id = models.CharField(max_length=64, blank=True)
    args_hash = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="audit_tenant_recent"),
            models.Index(fields=["subject_type", "subject_id", "id"], name="audit_subject"),
            models.Index(fields=["action", "-id"], name="audit_action_recent"),
            models.Index(fields=["-at"], name="audit_at_recent"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label or self.actor_type} {self.action} {self.result}"
        )
