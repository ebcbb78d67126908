"""``/mcp/``: the MCP server (``approvals.mcp.server``) served by the project's own WSGI app.

The contract wants ``/mcp/`` wherever the API is (``runserver``, ``make run``, gunicorn), so it is a Django
view, not a second (ASGI) server. The SDK's Streamable HTTP transport is an ASGI app on anyio; this view
runs it for the one HTTP request it serves:

* **Stateless, JSON responses** (``StreamableHTTPSessionManager(stateless=True, json_response=True)``, the
  SDK's documented mode for horizontally scaled servers): every POST carries one JSON-RPC message and gets one
  JSON answer; no session lives in a process's memory, so any thread of any web process may serve the next
  call (architecture: "no door holds state in process memory"). Session-based clients (protocol 2025-06-18,
  2025-11-25) work unchanged: the SDK answers their ``initialize`` without a session id, which the protocol
  allows, and their later calls need none; 2026-07-28 clients (stateless by design) are served by the same
  manager. Server-to-client requests (sampling, elicitation) are not offered: none of these tools needs them.
* **One event loop per request, the ORM in the request's thread.** ``async_to_sync`` runs the SDK's coroutine
  in a short-lived loop on a helper thread while this (WSGI) thread waits; the tool handlers hand their
  Django work back to this thread with ``sync_to_async(thread_sensitive=True)``. So the ORM is never called
  from a thread running an event loop (Django refuses that), a call uses this thread's persistent database
  connection like any REST request, and nothing is left behind when the request ends. ``anyio.run`` in this
  thread would be simpler, but every handler would then need another thread (and another database
  connection, opened and closed per call) for its ORM work.
* ``GET`` (a server-to-client SSE stream) and ``DELETE`` (ending a session) are ``405``: there are no sessions
  and no server-initiated messages, and a GET stream would hold a WSGI thread open for nothing.

Authentication is the API's (``Authorization: Bearer <agent token>``); a person's token is refused (403).
A request with an ``Origin`` header for a host not in ``ALLOWED_HOSTS`` is refused (403) before anything
else, as the MCP specification asks of every server (DNS rebinding), though a browser cannot send the agent's
token cross-origin anyway.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port, validate_host
from django.views.decorators.csrf import csrf_exempt
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from rest_framework import exceptions

from approvals.api.auth import INVALID_TOKEN, BearerTokenAuthentication
from approvals.mcp.server import CALLER, SERVER, Caller
from approvals.models import AgentCredential
from audit.where import where_from

# The SDK logs its manager's start and stop at INFO: here that is every request.
logging.getLogger("mcp.server.streamable_http_manager").setLevel(logging.WARNING)
logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)

ALLOWED_METHODS = "POST"
AGENTS_ONLY = "The MCP server is for agents: send an agent's token (Authorization: Bearer agt_...)."
NO_TOKEN = "Authentication is required: send Authorization: Bearer <agent token>."  # noqa: S105 (a message)
BAD_ORIGIN = "Requests from this Origin are not accepted."

# Host and Origin are checked here (Django's ALLOWED_HOSTS, and the Origin check below), so the SDK's own
# DNS-rebinding check, which wants its own list of hosts, stays off; it still checks Content-Type.
_TRANSPORT_SECURITY = TransportSecuritySettings(enable_dns_rebinding_protection=False)


def _error(status: int, code: str, detail: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": code, "detail": detail}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _origin_allowed(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True
    domain, _port = split_domain_port(urlsplit(origin).netloc)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def _agent(request: HttpRequest) -> AgentCredential | JsonResponse:
    challenge = {"WWW-Authenticate": 'Bearer realm="mcp"'}
    try:
        found = BearerTokenAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed:
        return _error(401, "invalid_token", INVALID_TOKEN, **challenge)
    if found is None:
        if request.user.is_authenticated:  # a person's browser session: this door is for agents
            return _error(403, "forbidden", AGENTS_ONLY)
        return _error(401, "unauthenticated", NO_TOKEN, **challenge)
    principal = found[0]
    if not isinstance(principal, AgentCredential):
        return _error(403, "forbidden", AGENTS_ONLY)
    return principal


def _scope(request: HttpRequest) -> dict[str, Any]:
    """The ASGI scope of this request, for the SDK's transport."""
    headers = []
    for name, value in request.META.items():
        if name.startswith("HTTP_"):
            headers.append(
                (name[5:].replace("_", "-").lower().encode("latin-1"), str(value).encode("latin-1"))
            )
        elif name in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((name.replace("_", "-").lower().encode("latin-1"), str(value).encode("latin-1")))
    if "HTTP_ACCEPT" not in request.META:
        headers.append((b"accept", b"*/*"))  # no Accept header accepts anything (RFC 9110, 12.5.1)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "server": (request.get_host(), int(request.get_port() or 80)),
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
    }


async def _serve(
    scope: dict[str, Any], body: bytes, caller: Caller
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run the SDK's Streamable HTTP transport for one request; its status, headers and body."""
    CALLER.set(caller)
    sent = {"status": 500, "headers": [], "body": b""}
    received = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
            sent["headers"] = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    # A manager per request: stateless, it holds nothing between requests, and its ``run()`` (the task
    # group its request handling needs) can be entered only once per instance.
    manager = StreamableHTTPSessionManager(
        app=SERVER,
        json_response=True,
        stateless=True,
        security_settings=_TRANSPORT_SECURITY,
        max_request_body_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**22,
    )
    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return int(sent["status"]), sent["headers"], sent["body"]  # type: ignore[call-overload,return-value]


@csrf_exempt  # bearer tokens only: no cookie is read, so there is nothing for CSRF to forge
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    if not _origin_allowed(request):
        return _error(403, "forbidden", BAD_ORIGIN)
    agent = _agent(request)
    if isinstance(agent, JsonResponse):
        return agent
    if request.method != "POST":
        return _error(
            405,
            "method_not_allowed",
            "This MCP server is stateless: POST one JSON-RPC message.",
            Allow=ALLOWED_METHODS,
        )
    caller = Caller(
        agent=agent,
        where=where_from(request, channel="mcp"),
        base_url=request.build_absolute_uri("/").rstrip("/"),
    )
    status, headers, body = async_to_sync(_serve)(_scope(request), request.body, caller)
    response = HttpResponse(body, status=status)
    for name, value in headers:
        key = name.decode("latin-1")
        if key.lower() not in ("content-length", "connection"):
            response[key] = value.decode("latin-1")
    return response
