"""The answers every operation of the API can give, added to the OpenAPI document in one place.

Per-view ``extend_schema`` annotations list what a view itself decides (404 for another tenant's proposal,
409 ``invalid_state``...). What the framework answers before the view runs is the same everywhere, and is
added here, so that the document describes the real API (the schemathesis fuzzing in
tests/fuzz/test_schemathesis.py holds it to that):

* an operation that reads a body: 400 ``malformed_request`` (not JSON, duplicate keys, too deep),
  413 ``payload_too_large``, 415 ``unsupported_media_type``;
* an operation with a path or query parameter: 400 ``invalid_parameter`` (a control character or bytes that
  are not UTF-8 in it: ``approvals.middleware``);
* an operation that accepts a bearer token: 401 (a token that is wrong or revoked is refused even where
  no token is needed);
* an unsafe method that accepts a browser session: 403 (CSRF check failed).

Every error body is the ``Error`` component: ``{"error": "<code>", "detail": "<sentence>", ...}``.
"""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
DESCRIPTIONS = {
    "400": "The request is not valid (`error` says how: `malformed_request`, `invalid_request`, `invalid_parameter`, ...).",
    "401": "No token, or a token that is not valid or was revoked (`unauthenticated`, `invalid_token`).",
    "403": "Not allowed for this caller (`forbidden`; a browser session without its CSRF token).",
    "413": "`payload_too_large`: the body is over the size limit.",
    "415": "`unsupported_media_type`: the body must be `application/json`.",
}
UNSAFE = {"post", "put", "patch", "delete"}


def _add(operation: dict[str, Any], status: str) -> None:
    responses = operation.setdefault("responses", {})
    if status not in responses:
        responses[status] = {
            "description": DESCRIPTIONS[status],
            "content": {"application/json": {"schema": ERROR_REF}},
        }


def add_common_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    error = schemas.get("Error")
    if error is not None:
        error["additionalProperties"] = True
        error["description"] = (
            "The contract's error shape; some errors add fields (errors, allowed, retry_after...)."
        )
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            if "requestBody" in operation:
                for status in ("400", "413", "415"):
                    _add(operation, status)
            if any(parameter.get("in") in ("path", "query") for parameter in operation.get("parameters", [])):
                _add(operation, "400")
            if "bearerAuth" in schemes:
                _add(operation, "401")
            if "cookieAuth" in schemes and method in UNSAFE:
                _add(operation, "403")
    return result


# What an agent can do next with a proposal it submitted: the ``id`` in the answer is the ``{id}`` of these
# operations. OpenAPI links make that machine-readable (generated clients and stateful API testers, such as
# schemathesis' stateful phase, follow them from a submission to its approval, rejection, cancel and receipt).
PROPOSAL_LINKS = {
    "GetProposal": ("proposals_retrieve", "Read the proposal again (its status, decision and receipt)."),
    "ApproveProposal": ("proposals_approve_create", "A reviewer approves it."),
    "RejectProposal": ("proposals_reject_create", "A reviewer rejects it."),
    "RequestChanges": ("proposals_request_changes_create", "A reviewer asks the agent for a corrected call."),
    "CancelProposal": ("proposals_cancel_create", "The proposing agent withdraws it while pending."),
    "GetReceipt": ("proposals_receipt_retrieve", "The receipt, once committed."),
}
LINKED_FROM = {
    "proposals_create": ("201", "200"),
    "proposals_retrieve": ("200",),
    "proposals_approve_create": ("202",),
    "proposals_reject_create": ("200",),
    "proposals_request_changes_create": ("200",),
    "proposals_cancel_create": ("200",),
}


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: OpenAPI links from a proposal's answers to its operations."""
    operations = {
        operation.get("operationId"): operation
        for methods in result.get("paths", {}).values()
        for operation in methods.values()
        if isinstance(operation, dict)
    }
    for source, statuses in LINKED_FROM.items():
        operation = operations.get(source)
        if operation is None:
            continue
        for status in statuses:
            response = operation.get("responses", {}).get(status)
            if response is None:
                continue
            response["links"] = {
                name: {"operationId": target, "parameters": {"id": "$response.body#/id"}, "description": text}
                for name, (target, text) in PROPOSAL_LINKS.items()
                if target in operations and target != source
            }
    return result
