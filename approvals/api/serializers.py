from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import get_script_prefix, reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from adapters import registry
from approvals import rules
from approvals.models import Proposal, Receipt, Risk, Status, Verdict
from approvals.services.decide import reason_given

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The args are validated by each tool's contract (GET /api/v1/tools/), not here; the document still says
# what every tool shares: a JSON object (null or a list is a 400, so the document must not allow them).
ARGS_OBJECT = {"type": "object", "additionalProperties": True}


@extend_schema_field(ARGS_OBJECT)
class ArgsField(serializers.JSONField):
    pass


@extend_schema_field({**ARGS_OBJECT, "nullable": True})
class NullableArgsField(serializers.JSONField):
    pass


class StrictCharField(serializers.CharField):
    """A string, and only a string. DRF's CharField turns a number into its text (``{"reason": 0}`` would
    reject a proposal for the reason ``"0"``); the document says string, and an agent that sends a number
    has a bug it should hear about."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return cast(str, super().to_internal_value(data))


class ReasonField(StrictCharField):
    """A rejection's (or a request for changes') reason: a string with something visible in it (spaces and
    invisible characters alone are refused, as they are no reason the agent can read)."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not reason_given(value):
            raise serializers.ValidationError("A reason needs something visible in it.")
        return value


class SubmitIn(serializers.Serializer):
    tool = StrictCharField(max_length=64)
    args = ArgsField(help_text="The tool's arguments: see GET /api/v1/tools/ for each tool's schema.")
    rationale = StrictCharField(max_length=4000, required=False, allow_blank=True, default="")
    on_behalf_of = StrictCharField(
        max_length=150,
        required=False,
        allow_null=True,
        default=None,
        help_text="Username of the person in this tenant the agent acts for.",
    )


class ApproveIn(serializers.Serializer):
    comment = StrictCharField(max_length=4000, required=False, allow_blank=True, default="")
    args = NullableArgsField(required=False, default=None, help_text="Edited args to approve instead.")
    args_hash = StrictCharField(
        max_length=64,
        required=False,
        default=None,
        help_text="The args hash you reviewed (the proposal's `args_hash`): if another reviewer's edit changed "
        "the args since, 409 `args_changed` and nothing is recorded, so your approval never completes a quorum "
        "on args you did not see.",
    )


class RejectIn(serializers.Serializer):
    reason = ReasonField(max_length=4000, allow_blank=False)


class RequestChangesIn(serializers.Serializer):
    reason = ReasonField(
        max_length=4000, allow_blank=False, help_text="What the agent should change; it is told to resubmit."
    )


class ChangeOut(serializers.Serializer):
    field = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class PreviewOut(serializers.Serializer):
    summary = serializers.CharField()
    changes = ChangeOut(many=True)
    notes = serializers.ListField(
        child=serializers.CharField(), help_text="Risk and policy notes for the reviewer."
    )


class DecisionOut(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    by = serializers.CharField()
    at = serializers.DateTimeField()
    reason = serializers.CharField(allow_blank=True)


class ApprovalOut(serializers.Serializer):
    by = serializers.CharField()
    at = serializers.DateTimeField()
    args_hash = serializers.CharField(
        help_text="The args this reviewer approved (the proposal's current ones)."
    )
    comment = serializers.CharField(allow_blank=True)


class ApprovalsOut(serializers.Serializer):
    # The contract's name; it shadows Field.required for mypy only (DRF's metaclass takes fields off the class).
    required = serializers.IntegerField(  # type: ignore[assignment]
        help_text="Approvals from distinct reviewers its rule requires."
    )
    given = ApprovalOut(many=True, help_text="The approvals that count: on the current args only.")
    missing = serializers.IntegerField(help_text="Approvals still needed; 0 once it is no longer pending.")


class ReceiptOut(serializers.ModelSerializer):
    class Meta:
        model = Receipt
        fields = ["system", "external_id", "external_url", "committed_at", "attempts", "response_summary"]


class ReceiptSummaryOut(serializers.Serializer):
    system = serializers.CharField()
    external_id = serializers.CharField()
    committed_at = serializers.DateTimeField()


class LinksOut(serializers.Serializer):
    self = serializers.URLField()
    review = serializers.URLField()
    approve = serializers.URLField()
    reject = serializers.URLField()
    request_changes = serializers.URLField()
    cancel = serializers.URLField()
    receipt = serializers.URLField()


class SagaStepOut(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=["done", "compensated", "compensation_failed"])


class ProposalOut(serializers.Serializer):
    id = serializers.UUIDField()
    tenant = serializers.CharField(source="tenant.slug")
    tool = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    status_reason = serializers.CharField(allow_blank=True)
    args = serializers.DictField()
    args_hash = serializers.CharField(
        help_text="Hash of the args as they stand: what an approval binds to (bulk review's `args_hashes`)."
    )
    rationale = serializers.CharField(allow_blank=True)
    risk = serializers.ChoiceField(choices=Risk.choices)
    preview = serializers.SerializerMethodField()
    idempotency_key = serializers.CharField()
    agent = serializers.CharField(source="agent.name")
    on_behalf_of = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    decision = serializers.SerializerMethodField()
    approvals = serializers.SerializerMethodField(
        help_text="The quorum: approvals required, given on the current args, still missing."
    )
    receipt = serializers.SerializerMethodField()
    steps = serializers.SerializerMethodField(
        help_text="Multi-step tools: which steps ran and which were undone."
    )
    links = serializers.SerializerMethodField()

    @extend_schema_field(SagaStepOut(many=True))
    def get_steps(self, obj: Proposal) -> list[dict[str, Any]]:
        tool = registry.find(obj.tool)  # the tool's kind is asked of the registry, never read off its name
        if tool is None or not tool.is_workflow:
            return []
        return [{"index": s.index, "name": s.name, "state": s.state} for s in obj.saga_steps.all()]

    @extend_schema_field(PreviewOut)
    def get_preview(self, obj: Proposal) -> dict[str, Any]:
        preview = obj.preview or {}
        # The notes too: an API reviewer must read what the reviewer page says (e.g. which policy let a Slack
        # link through, and where it goes).
        return {
            "summary": preview.get("summary", ""),
            "changes": preview.get("changes", []),
            "notes": preview.get("notes", []),
        }

    def get_on_behalf_of(self, obj: Proposal) -> str | None:
        # A set id is a person (the foreign key is not read when the id is empty).
        return cast("User", obj.on_behalf_of).get_username() if obj.on_behalf_of_id else None

    @extend_schema_field(DecisionOut(allow_null=True))
    def get_decision(self, obj: Proposal) -> dict[str, Any] | None:
        decisions = getattr(obj, "prefetched_decisions", None)
        decision = (
            decisions[0]
            if decisions
            else (None if decisions is not None else obj.decisions.select_related("reviewer").first())
        )
        if decision is None:
            return None
        return {
            "verdict": decision.verdict,
            "by": decision.reviewer.get_username(),
            "at": decision.at,
            "reason": decision.reason,
        }

    @extend_schema_field(ApprovalsOut)
    def get_approvals(self, obj: Proposal) -> dict[str, Any]:
        # A list reads the counted approvals of its whole page at once (``rules.counted_approvals_of``) and
        # leaves them here; one proposal reads its own.
        return rules.approvals_state(obj, counted=getattr(obj, "prefetched_approvals", None))

    @extend_schema_field(ReceiptSummaryOut(allow_null=True))
    def get_receipt(self, obj: Proposal) -> dict[str, Any] | None:
        if obj.status != Status.COMMITTED:
            return None  # a receipt is written in the transaction that sets committed, and only there
        try:
            receipt = obj.receipt
        except Receipt.DoesNotExist:
            return None
        return {
            "system": receipt.system,
            "external_id": receipt.external_id,
            "committed_at": receipt.committed_at,
        }

    @extend_schema_field(LinksOut)
    def get_links(self, obj: Proposal) -> dict[str, str]:
        base = settings.ACME_PUBLIC_URL
        request = self.context.get("request")
        if request is not None:
            base = request.build_absolute_uri("/").rstrip("/")

        pk = str(obj.pk)
        return {key: base + before + pk + after for key, before, after in _link_paths(get_script_prefix())}


_LINKS = (
    ("self", "api-proposal-detail"),
    ("review", "proposal-review"),
    ("approve", "api-proposal-approve"),
    ("reject", "api-proposal-reject"),
    ("request_changes", "api-proposal-request-changes"),
    ("cancel", "api-proposal-cancel"),
    ("receipt", "api-proposal-receipt"),
)
_PK_MARK = uuid.UUID(int=0)


@functools.lru_cache(maxsize=16)
def _link_paths(script_prefix: str) -> tuple[tuple[str, str, str], ...]:
    """Each link's path around its proposal id, reversed once per script prefix: seven ``reverse()`` calls per
    proposal cost more than the rest of its representation (a page of 50 made 350)."""
    paths = []
    for key, name in _LINKS:
        before, mark, after = reverse(name, kwargs={"pk": _PK_MARK}).partition(str(_PK_MARK))
        if not mark:
            raise ImproperlyConfigured(f"the path of {name} does not hold the proposal id")
        paths.append((key, before, after))
    return tuple(paths)


_bound = threading.local()


def proposals_out(proposals: Iterable[Proposal], request: Any) -> list[dict[str, Any]]:
    """The API's representation of proposals.

    A DRF serializer deep-copies its declared fields when it is first used, which costs more than rendering
    one proposal; so each thread keeps one bound ProposalOut and only swaps its context (the request, for
    the links). Fields hold no per-object state, and a thread serves one request at a time."""
    serializer = getattr(_bound, "proposal_out", None)
    if serializer is None:
        serializer = _bound.proposal_out = ProposalOut(context={})
    serializer._context = {"request": request}
    try:
        return [serializer.to_representation(p) for p in proposals]
    finally:
        serializer._context = {}


def proposal_out(proposal: Proposal, request: Any) -> dict[str, Any]:
    return proposals_out([proposal], request)[0]
