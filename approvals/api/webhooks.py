"""Webhook endpoints: an agent's callback registration, the CRM's inbound events, and the events list."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services, webhooks
from approvals.api import parsers
from approvals.api.errors import ApiError
from approvals.api.views.base import ERROR, StrictCursorPagination, _require_agent, _valid, where
from approvals.models import AgentCredential, InboundEvent, Tenant

WebhookOut = inline_serializer(
    "Webhook",
    fields={
        "url": serializers.URLField(allow_blank=True),
        "secret": serializers.CharField(),
        "events": serializers.ListField(child=serializers.CharField()),
        "signature_header": serializers.CharField(),
    },
)


class WebhookIn(serializers.Serializer):
    url = serializers.URLField(max_length=500)


def _webhook_out(agent: AgentCredential) -> dict[str, Any]:
    return {
        "url": agent.webhook_url,
        "secret": webhooks.secret_for(agent),
        "events": list(webhooks.EVENTS),
        "signature_header": f"{webhooks.SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.<body>')>",
    }


class AgentWebhookView(APIView):
    """The calling agent's callback URL for events about its proposals."""

    @extend_schema(
        responses={200: WebhookOut, 401: ERROR, 403: ERROR},
        summary="The agent's webhook and its signing secret.",
    )
    def get(self, request: Request) -> Response:
        return Response(_webhook_out(_require_agent(request)))

    @extend_schema(
        request=WebhookIn,
        responses={200: WebhookOut, 400: ERROR, 401: ERROR, 403: ERROR},
        summary="Register (or replace) the agent's callback URL.",
    )
    def put(self, request: Request) -> Response:
        agent = _require_agent(request)
        data = _valid(WebhookIn, request.data)
        try:
            url = webhooks.check_callback_url(data["url"])
        except webhooks.UnsafeURL as exc:
            raise ApiError(
                400,
                "invalid_request",
                str(exc),
                errors=[{"loc": ["url"], "msg": str(exc), "type": "unsafe_url"}],
            ) from None
        services.agent_webhook_set(agent=agent, url=url, where=where(request))
        return Response(_webhook_out(agent))

    @extend_schema(
        request=None, responses={204: None, 401: ERROR, 403: ERROR}, summary="Stop sending events."
    )
    def delete(self, request: Request) -> Response:
        agent = _require_agent(request)
        services.agent_webhook_set(agent=agent, url="", where=where(request))
        return Response(status=204)


class CrmInboundView(APIView):
    """Signed events from the CRM (Zendesk webhook signing). No bearer token: the signature is the proof."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=inline_serializer(
            "CrmEvent", fields={"id": serializers.CharField(), "type": serializers.CharField()}
        ),
        parameters=[
            OpenApiParameter("tenant", str, required=True),
            OpenApiParameter("X-Zendesk-Webhook-Signature", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "X-Zendesk-Webhook-Signature-Timestamp", str, OpenApiParameter.HEADER, required=True
            ),
        ],
        responses={
            202: inline_serializer(
                "InboundAck", fields={"status": serializers.CharField(), "id": serializers.IntegerField()}
            ),
            400: ERROR,
            401: ERROR,
            404: ERROR,
            409: ERROR,
            413: ERROR,
            503: ERROR,
        },
        summary="Receive a signed CRM event (recorded once per event id, across tenants).",
    )
    def post(self, request: Request) -> Response:
        slug = request.query_params.get("tenant", "")
        # The tenant's own signing secret (its CRM connection), else CRM_WEBHOOK_SECRET: known before the
        # tenant is looked up, so an unsigned request learns nothing of which tenants exist.
        key = webhooks.inbound_key(slug)
        if not key.secret:
            raise ApiError(
                503,
                "not_configured",
                "Inbound CRM webhooks are off: no signing secret for this tenant "
                "(set_connection --signing-secret) and CRM_WEBHOOK_SECRET is not set.",
            )
        try:
            body = request.body
        except RequestDataTooBig:
            raise ApiError(
                413, "payload_too_large", "The event is larger than this endpoint accepts."
            ) from None
        try:
            webhooks.verify_inbound(
                secret=key.secret,
                signature=request.headers.get("X-Zendesk-Webhook-Signature", ""),
                timestamp=request.headers.get("X-Zendesk-Webhook-Signature-Timestamp", ""),
                body=body,
            )
        except webhooks.BadSignature as exc:
            raise ApiError(401, "invalid_signature", str(exc)) from None
        # Signed by the CRM, and still parsed like any body: the signature proves who sent it, not that
        # it is something the database can store (no nesting past MAX_DEPTH, no NUL character).
        try:
            payload = parsers.loads_strict(body)
        except ParseError as exc:
            raise ApiError(400, "malformed_request", f"The body must be JSON: {exc.detail}") from None
        if parsers.has_nul(payload):
            raise ApiError(
                400, "malformed_request", "The event contains a NUL character, which cannot be stored."
            )
        if not isinstance(payload, dict) or not str(payload.get("id") or "").strip():
            raise ApiError(
                400,
                "invalid_request",
                "The event needs an id.",
                errors=[{"loc": ["id"], "msg": "required", "type": "missing"}],
            )
        try:
            webhooks.check_bound(key=key, tenant_slug=slug, payload=payload)
        except webhooks.BadSignature as exc:
            raise ApiError(401, "invalid_signature", str(exc)) from None
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise Http404
        try:
            event, created = webhooks.inbound_record(
                tenant=tenant, source="crm", payload=payload, where=where(request)
            )
        except webhooks.ForeignEvent as exc:
            raise ApiError(409, "duplicate_event", str(exc)) from None
        return Response({"status": "recorded" if created else "duplicate", "id": event.pk}, status=202)


class EventPagination(StrictCursorPagination):
    ordering = ("-received_at", "-id")
    page_size = 50


class InboundEventOut(serializers.ModelSerializer):
    class Meta:
        model = InboundEvent
        fields = ["id", "source", "event_id", "type", "payload", "received_at"]


class InboundEventListView(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "InboundEventPage",
                fields={
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": InboundEventOut(many=True),
                },
            ),
            400: ERROR,
            401: ERROR,
            403: ERROR,
        },
        parameters=[OpenApiParameter("cursor", str, required=False)],
        summary="Events received from outside systems for the agent's tenant, newest first.",
    )
    def get(self, request: Request) -> Response:
        agent = _require_agent(request)
        paginator = EventPagination()
        page = paginator.paginate_queryset(
            InboundEvent.objects.filter(tenant=agent.tenant), request, view=self
        )
        return paginator.get_paginated_response(InboundEventOut(page, many=True).data)
