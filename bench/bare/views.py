import hashlib
from typing import Any, cast

from django.db import transaction
from rest_framework import authentication, exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.bare.models import BareAudit, BareRow, BareToken


class RowIn(serializers.Serializer):
    tool = serializers.CharField(max_length=64)
    args = serializers.DictField()
    rationale = serializers.CharField(required=False, allow_blank=True, default="")


def _answer(row: BareRow) -> Response:
    return Response({"id": row.pk, "tool": row.tool, "args": row.args, "rationale": row.rationale,
                     "created_at": row.created_at}, status=201)


class RowsView(APIView):
    """Validate the body, insert one row, answer 201 with it: the least a DRF intake endpoint does."""

    def post(self, request: Request) -> Response:
        data = RowIn(data=request.data)
        data.is_valid(raise_exception=True)
        return _answer(BareRow.objects.create(**data.validated_data))

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class BareBearer(authentication.BaseAuthentication):
    """A bearer token looked up by its sha256 (one SELECT by a unique column), as a plain DRF API does it."""

    def authenticate(self, request: Any) -> tuple[BareToken, BareToken]:
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer":
            raise exceptions.AuthenticationFailed("a bearer token is required")
        digest = hashlib.sha256(header[1]).hexdigest()
        found = list(BareToken.objects.filter(token_hash=digest, is_active=True)[:1])
        if not found:
            raise exceptions.AuthenticationFailed("unknown token")
        return found[0], found[0]

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"


class AuditedRowsView(APIView):
    """The least a *trustworthy* intake does, for reference: an authenticated caller, and the row with one
    audit record of who wrote it from where, in one transaction. No policy, no preview, no idempotency,
    no field history, no hash chain."""

    authentication_classes = [BareBearer]
    permission_classes = [IsAuthenticated]

    def post(self, request: Request) -> Response:
        data = RowIn(data=request.data)
        data.is_valid(raise_exception=True)
        token = cast(BareToken, request.auth)  # BareBearer's
        with transaction.atomic():
            row = BareRow.objects.create(**data.validated_data)
            BareAudit.objects.create(tenant=token.tenant, action="row.created", subject_id=str(row.pk),
                                     ip=request.META.get("REMOTE_ADDR"), data={"tool": row.tool})
        return _answer(row)
