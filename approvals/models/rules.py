"""Approval rules: who may decide (reviewer groups), the approvals a quorum counts, and reviewers' snoozes.

A ``ToolPolicy`` (approvals.models.policies) names how many approvals a proposal needs and which group
decides; both are snapshotted onto the proposal at submit. The services (approvals.services.decide) count
``Approval`` rows on the proposal's current args hash; ``approvals.rules`` reads them for the API, web and
Slack."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from approvals.models.accounts import Tenant
from approvals.models.proposals import Channel, Proposal


class ReviewerGroup(models.Model):
    """People of one tenant who decide the proposals a rule routes to them (and only those people)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="reviewer_groups")
    name = models.CharField(max_length=64)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="reviewer_groups")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="reviewer_group_name_unique_in_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant})"


class Approval(models.Model):
    """One person's approval of one version of a proposal's args. The approval that completes the quorum
    also creates the proposal's ``Decision``; an edit changes ``args_hash``, so earlier approvals stop
    counting."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="approvals")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    args_hash = models.CharField(max_length=64, help_text="Hash of the exact args approved.")
    comment = models.TextField(blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            # One approval of one person on one version of the args: the same reviewer twice counts once.
            models.UniqueConstraint(
                fields=["proposal", "reviewer", "args_hash"], name="approval_once_per_reviewer_and_args"
            )
        ]

    def __str__(self) -> str:
        return f"approval by {self.reviewer} ({self.proposal_id})"


class ReviewSnooze(models.Model):
    """A reviewer put a proposal out of their "for you" list until ``until`` (its status and expiry stay)."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="snoozes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["proposal", "user"], name="review_snooze_once")]

    def __str__(self) -> str:
        return f"{self.user} snoozed {self.proposal_id} until {self.until}"
