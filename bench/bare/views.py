import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any, cast

from django.db import connection, transaction
from django.utils import timezone
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
    return Response(
        {
            "id": row.pk,
            "tool": row.tool,
            "args": row.args,
            "rationale": row.rationale,
            "created_at": row.created_at,
        },
        status=201,
    )


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
            BareAudit.objects.create(
                tenant=token.tenant,
                action="row.created",
                subject_id=str(row.pk),
                ip=request.META.get("REMOTE_ADDR"),
                data={"tool": row.tool},
            )
        return _answer(row)


# --- The floor: the product's own statements, sent by hand ---------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class FloorView(APIView):
    """A floor, not a product: the SQL a submission to the gateway runs (``POST /api/v1/proposals/``), in the
    same order on the product's own tables and indexes, sent by hand from a plain DRF view. It reads the
    agent by its token's sha256 (with its tenant) and the agent's policy rows, then in one transaction
    inserts the proposal and its hash-chained audit event (under the tenant's chain lock; no django-auditlog
    entry: the product keeps none for proposals, issue 21). None of the gateway's Python runs: no ORM, no pydantic validation or normalization, no policy
    evaluation, no preview beyond a copy of the args, no serializer. Whatever the gateway does, a
    submission cannot cost less than this on this stack, so its rate bounds what the intake ratio can reach.
    The statements are written out with their columns (the product's schema as of its migrations): a
    migration that adds a required column makes this endpoint fail loudly, never measure something else."""

    authentication_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer":
            raise exceptions.AuthenticationFailed("a bearer token is required")
        digest = hashlib.sha256(header[1]).hexdigest()
        data = RowIn(data=request.data)
        data.is_valid(raise_exception=True)
        tool, args, rationale = (data.validated_data[k] for k in ("tool", "args", "rationale"))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.id, a.tenant_id, a.name, a.allowed_tools, t.slug FROM approvals_agentcredential a"
                " JOIN approvals_tenant t ON a.tenant_id = t.id WHERE a.is_active AND a.token_hash = %s LIMIT 1",
                [digest],
            )
            agent = cursor.fetchone()
            if agent is None:
                raise exceptions.AuthenticationFailed("unknown token")
            agent_id, tenant_id, agent_name, _tools, tenant = agent
            cursor.execute(
                "SELECT id, tool, name, allowed_fields, max_per_hour, max_items, refuse_card_numbers, risk_override,"
                " risk, approvals_required, review_group_id FROM approvals_toolpolicy WHERE (agent_id = %s OR agent_id IS NULL) AND enabled"
                " AND tenant_id = %s ORDER BY id",
                [agent_id, tenant_id],
            )
            cursor.fetchall()
            pk = uuid.uuid4()
            now = timezone.now()
            args_hash = hashlib.sha256(_json(args).encode()).hexdigest()
            key = "derived-" + hashlib.sha256(_json([tool, args, agent_id, None]).encode()).hexdigest()
            preview = {
                "summary": f"{tool}: {len(args)} fields",
                "notes": [],
                "snapshot": {},
                "changes": [{"field": k, "before": None, "after": v} for k, v in args.items()],
            }
            ip = request.META.get("REMOTE_ADDR")
            with transaction.atomic():
                cursor.execute(
                    "INSERT INTO approvals_proposal (id, tenant_id, agent_id, on_behalf_of_id, tool, args, args_hash,"
                    " submitted_args_hash, rationale, risk, preview, status, status_reason, idempotency_key,"
                    " expires_at, commit_attempts, lease_until, next_attempt_at, discarded_at, created_at, updated_at)"
                    " VALUES (%s, %s, %s, NULL, %s, %s::jsonb, %s, %s, %s, 'medium', %s::jsonb, 'pending', '', %s,"
                    " %s, 0, NULL, NULL, NULL, %s, %s)",
                    [
                        pk,
                        tenant_id,
                        agent_id,
                        tool,
                        _json(args),
                        args_hash,
                        args_hash,
                        rationale,
                        _json(preview),
                        key,
                        now + timedelta(days=1),
                        now,
                        now,
                    ],
                )
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["audit:" + tenant])
                cursor.execute(
                    "SELECT hash FROM audit_auditevent WHERE tenant = %s ORDER BY id DESC LIMIT 1", [tenant]
                )
                head = cursor.fetchone()
                prev = head[0] if head else ""
                event = {
                    "tenant": tenant,
                    "actor": ["agent", str(agent_id), agent_name],
                    "action": "proposal.submitted",
                    "subject": ["proposal", str(pk)],
                    "at": now.isoformat(),
                    "where": ["api", ip or "", ""],
                    "result": "ok",
                    # What the product's proposal.submitted carries (approvals.lifecycle.SUBMITTED_FIELDS).
                    "data": {
                        "tool": tool,
                        "status": "pending",
                        "status_reason": "",
                        "fields": {
                            "risk": "medium",
                            "rationale": rationale,
                            "idempotency_key": key,
                            "expires_at": (now + timedelta(days=1)).isoformat(),
                            "on_behalf_of": None,
                            "submitted_args_hash": args_hash,
                            "approvals_required": 1,
                            "review_group": None,
                            "approval_rule": "",
                            "assignee": None,
                        },
                        "args": args,
                    },
                    "decision_id": "",
                    "args_hash": args_hash,
                    "prev": prev,
                }
                cursor.execute(
                    "INSERT INTO audit_auditevent (tenant, actor_type, actor_id, actor_label, action, subject_type,"
                    " subject_id, at, channel, ip, user_agent, result, data, decision_id, args_hash, prev_hash, hash)"
                    " VALUES (%s, 'agent', %s, %s, 'proposal.submitted', 'proposal', %s, %s, 'api', %s, '', 'ok',"
                    " %s::jsonb, '', %s, %s, %s) RETURNING id",
                    [
                        tenant,
                        str(agent_id),
                        agent_name,
                        str(pk),
                        now,
                        ip,
                        _json(event["data"]),
                        args_hash,
                        prev,
                        hashlib.sha256(_json(event).encode()).hexdigest(),
                    ],
                )
        return Response(
            {
                "id": str(pk),
                "tenant": tenant,
                "tool": tool,
                "status": "pending",
                "args": args,
                "rationale": rationale,
                "risk": "medium",
                "preview": preview,
                "idempotency_key": key,
                "created_at": now,
                "expires_at": now + timedelta(days=1),
                "decision": None,
                "receipt": None,
            },
            status=201,
        )
