"""Bulk review (``POST /api/v1/proposals/bulk/``): one reviewer's verdict on several proposals, each decided
on its own by ``services.proposals_bulk_decide`` (every rule applies to each; see that module). Its body and
its answer are declared here, beside it."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services
from approvals.api import serializers as s
from approvals.api.views.base import ERROR, _require_person, _valid, where
from approvals.models import Status
from approvals.services.bulk import MAX_IDS as MAX_BULK_IDS
from approvals.services.decide import reason_given


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a string, and only so: DRF's UUIDField also takes an integer (and ``false`` as 0), which
    the document does not allow."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class BulkIn(serializers.Serializer):
    ids = serializers.ListField(
        child=StrictUUIDField(),
        min_length=1,
        max_length=MAX_BULK_IDS * 10,
        help_text=f"The proposals to decide; at most {MAX_BULK_IDS} distinct (a repeated id counts once).",
    )
    verdict = serializers.ChoiceField(choices=["approve", "reject"])
    reason = s.StrictCharField(
        max_length=4000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required to reject; an approval's comment otherwise.",
    )
    args_hashes = serializers.DictField(
        child=s.StrictCharField(max_length=64),
        required=False,
        default=dict,
        help_text="Id → the args hash the reviewer saw: a proposal whose args changed since is skipped "
        "(`args_changed`), not decided.",
    )

    def validate_ids(self, ids: list[Any]) -> list[str]:
        distinct = list(dict.fromkeys(str(i) for i in ids))
        if len(distinct) > MAX_BULK_IDS:
            raise serializers.ValidationError(f"At most {MAX_BULK_IDS} distinct ids.")
        return distinct

    def validate_args_hashes(self, hashes: dict[str, str]) -> dict[str, str]:
        out = {}
        for key, value in hashes.items():
            try:
                out[str(uuid.UUID(key))] = value
            except ValueError:
                raise serializers.ValidationError(f"{key[:50]!r} is not a proposal id.") from None
        return out

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["verdict"] == "reject" and not reason_given(data.get("reason", "")):
            raise serializers.ValidationError({"reason": "A reason is required to reject."})
        unknown = set(data.get("args_hashes") or {}) - set(data["ids"])
        if unknown:
            raise serializers.ValidationError({"args_hashes": "Every key must be one of ids."})
        return data


class BulkResultOut(serializers.Serializer):
    id = serializers.CharField()
    result = serializers.ChoiceField(choices=["decided", "skipped"])
    status = serializers.ChoiceField(
        choices=Status.choices, allow_null=True, help_text="Its status after; null when not found."
    )
    error = serializers.CharField(
        required=False, help_text="Why it was skipped: args_changed, not_found, already_approved, ..."
    )
    detail = serializers.CharField(required=False)


class BulkOut(serializers.Serializer):
    results = BulkResultOut(many=True)


class ProposalBulkView(APIView):
    @extend_schema(
        request=BulkIn,
        responses={200: BulkOut, 400: ERROR, 401: ERROR, 403: ERROR},
        summary="Approve or reject several proposals (reviewers): one result per proposal.",
        operation_id="proposals_bulk",
        description="Each proposal is decided alone, under every rule (group, quorum, state, expiry): an "
        "approval short of the quorum is `decided` and stays `pending`. With `args_hashes`, a proposal whose "
        "args changed since is skipped `args_changed`; an id you cannot see is skipped `not_found`.",
    )
    def post(self, request: Request) -> Response:
        reviewer = _require_person(request)
        data = _valid(BulkIn, request.data, code="invalid_args")
        results = services.proposals_bulk_decide(
            reviewer=reviewer,
            ids=data["ids"],
            verdict=data["verdict"],
            reason=data.get("reason") or "",
            args_hashes=data.get("args_hashes") or None,
            where=where(request),
        )
        return Response({"results": results})
