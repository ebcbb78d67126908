"""Tracing spans (OpenTelemetry API), exported only when the environment asks for it.

``span(name, **attrs)`` wraps a step: ``adapter.validate``, ``adapter.map``, ``adapter.policy``,
``adapter.preview``, ``adapter.execute``, ``http.call`` and one ``http.attempt`` per try. Without a
configured SDK no span is made at all (the block runs with ``None`` for its span).

Export: when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set *and* ``opentelemetry-sdk`` plus
``opentelemetry-exporter-otlp-proto-http`` are installed, ``configure()`` (called once by the audit app)
installs a batching OTLP exporter; the standard ``OTEL_*`` variables (service name, headers...) apply.
If either package is missing, exporting is simply off. Attributes are names, statuses and counts only:
never args, bodies, headers or query strings (they can hold PII or tokens).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

TRACER_NAME = "acme.gateway"

try:
    from opentelemetry import trace as _trace
except ImportError:  # the API is a dependency; this keeps a broken install from breaking the call path
    _trace = None  # type: ignore[assignment]

_configured = False


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if isinstance(v, str | bool | int | float) and v != ""}


@contextlib.contextmanager
def span(name: str, **attrs: Any) -> Iterator[Any]:
    """A span around a block; exceptions are recorded on it and re-raised."""
    # No provider installed (no exporter configured): the API would hand out non-recording spans, and making
    # eight of them cost about 3 % of a submission's CPU (bench/README.md, round 8); nothing to make then.
    if _trace is None or isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        yield None
        return
    tracer = _trace.get_tracer(TRACER_NAME)
    # Exceptions are recorded by type only: their messages can carry URLs with queries, or PII.
    with tracer.start_as_current_span(
        name, attributes=_clean(attrs), record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            from opentelemetry.trace import Status, StatusCode

            current.set_attribute("error.type", type(exc).__name__)
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def set_attributes(current: Any, **attrs: Any) -> None:
    if current is not None:
        current.set_attributes(_clean(attrs))


def configure() -> bool:
    """Install an OTLP exporter if ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the SDK is installed."""
    global _configured
    if _configured or _trace is None or not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK/OTLP exporter is not "
            "installed; tracing export is off"
        )
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "acme-gateway")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _trace.set_tracer_provider(provider)
    _configured = True
    return True
