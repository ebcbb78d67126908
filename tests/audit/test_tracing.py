"""Tracing spans for validation, mapping, the client call and each retry (OpenTelemetry SDK in memory)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
import responses

from approvals import services

from .conftest import API, TICKETS_URL, WEB, created

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans():
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk.TracerProvider):
        provider = sdk.TracerProvider()
        trace.set_tracer_provider(provider)  # once per process; later tests reuse it
        provider = trace.get_tracer_provider()
    if not getattr(provider, "_acme_test_exporter", False):
        # The SDK's provider by now: the API's type does not know span processors.
        cast("SdkTracerProvider", provider).add_span_processor(SimpleSpanProcessor(_EXPORTER))
        setattr(provider, "_acme_test_exporter", True)  # noqa: B010 (a marker: not an attribute of the type)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_spans_for_validation_mapping_the_call_and_each_retry(spans, acme, no_sleep):
    args = {"subject": "Refund", "description": "for jane@example.com", "priority": "critical"}
    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=args, where=API
    ).proposal
    prepared = [s.name for s in spans.get_finished_spans()]
    assert prepared[:4] == ["adapter.validate", "adapter.map", "adapter.policy", "adapter.preview"]
    spans.clear()

    services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=WEB)
    spans.clear()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TICKETS_URL, status=503)
        created(rsps)
        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "committed"

    finished = spans.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    assert {"adapter.execute", "adapter.validate", "http.call", "http.attempt"} <= set(by_name)
    attempts = sorted(by_name["http.attempt"], key=lambda s: s.attributes["attempt"])
    assert [
        (s.attributes["attempt"], s.attributes.get("status"), s.attributes.get("error.type"))
        for s in attempts
    ] == [(1, None, "_Retryable"), (2, 201, None)]
    call = by_name["http.call"][0]
    execute = by_name["adapter.execute"][0]
    assert all(s.parent.span_id == call.context.span_id for s in attempts)
    assert call.parent.span_id == execute.context.span_id
    assert call.attributes["downstream"] == "crm" and call.attributes["attempts"] == 2
    assert execute.attributes["tool"] == "crm.create_ticket"
    # Names, statuses and counts only: never the args.
    assert "jane@example.com" not in str([dict(s.attributes) for s in finished])


def test_without_an_sdk_configured_exporting_is_off(monkeypatch):
    from audit import tracing

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert tracing.configure() is False
    with tracing.span("anything", tool="x") as current:
        tracing.set_attributes(current, n=1)
