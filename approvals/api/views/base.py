"""What every REST API view shares: the error schema, the request's ``Where``, body validation, who the caller
is (agent or person), the proposal the caller may see, a strict cursor, and the JSON 404 for unknown paths."""

from __future__ import annotations

from typing import Any

from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from approvals import selectors
from approvals.api.errors import ApiError, _flatten
from approvals.models import AgentCredential, Proposal
from audit.services import Where
from audit.where import where_from

ERROR = inline_serializer(
    "Error",
    fields={"error": serializers.CharField(), "detail": serializers.CharField()},
)


def where(request: Request) -> Where:
    channel = (
        "web"
        if getattr(request, "successful_authenticator", None).__class__.__name__ == "SessionAuthentication"
        else "api"
    )
    return where_from(request, channel=channel)


def _valid(
    serializer_class: type[serializers.Serializer], data: Any, code: str = "invalid_request"
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(
            400,
            code,
            "The request body must be a JSON object.",
            errors=[{"loc": [], "msg": "must be a JSON object", "type": "dict_type"}],
        )
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ApiError(400, code, "The request body is not valid.", errors=_flatten(serializer.errors))
    return dict(serializer.validated_data)


def _require_agent(request: Request) -> AgentCredential:
    if not isinstance(request.user, AgentCredential):
        raise ApiError(403, "forbidden", "Only an agent token can do this.")
    return request.user


def _require_person(request: Request) -> Any:
    if isinstance(request.user, AgentCredential):
        raise ApiError(403, "forbidden", "Agents cannot decide on proposals; a reviewer must.")
    return request.user


def _get_visible(request: Request, pk: Any, *, to_decide: bool = False) -> Proposal:
    """The proposal if the caller may see it, else 404. ``to_decide``: only the row, for a service that reads
    it again under its lock and returns the proposal to answer with (no related rows to read here)."""
    visible = selectors.proposals_visible_to(request.user)
    if to_decide:
        visible = visible.select_related(None)
    try:
        return visible.get(pk=pk)
    except Proposal.DoesNotExist:
        raise Http404 from None


class StrictCursorPagination(CursorPagination):
    """A cursor that cannot be read is the client's mistake (400), not a missing resource (DRF says 404)."""

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ApiError(
                400,
                "invalid_request",
                "The cursor is not valid: send back a next/previous link as is.",
                errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
            ) from None


def check_page_size(request: Request) -> None:
    """DRF's paginator silently ignores a page_size it cannot read; the document says it is an integer."""
    raw = request.query_params.get("page_size")
    if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw)):
        raise ApiError(
            400,
            "invalid_request",
            "page_size must be a positive integer.",
            errors=[{"loc": ["query", "page_size"], "msg": "a positive integer", "type": "int_type"}],
        )


@csrf_exempt  # it changes nothing; a POST to a wrong path must get this 404, not the CSRF page
def not_found(request: Any, path: str = "") -> JsonResponse:
    """Any path under /api/v1/ that names no endpoint (or an id that is not a UUID): the error shape, not the
    HTML 404 page of the reviewer UI."""
    return JsonResponse({"error": "not_found", "detail": "No such endpoint or object."}, status=404)
