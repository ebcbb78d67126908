"""The OpenAPI document and its interactive docs, both served by the app itself.

* ``/api/v1/schema/``: YAML by default; ``?format=json`` (or ``Accept: application/json``) gives JSON. The
  project turns DRF's ``format`` override off (``?format=openai`` on the tools list is ours), so this view
  honours the parameter itself.
* ``/api/v1/docs/``: Swagger UI from drf-spectacular-sidecar's static files (no CDN: it works offline and
  nothing is loaded from another origin), in drf-spectacular's split view: the page and its init script
  (``?script``) are two responses, so the Content-Security-Policy needs no inline script. The page's
  template is ours only to move drf-spectacular's inline ``<style>`` into a static file.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request


class FormatParameterNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with ``?format=`` read even though ``URL_FORMAT_OVERRIDE`` is off project-wide."""

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return super().select_renderer(
            request, renderers, format_suffix or request.query_params.get("format")
        )


class SchemaView(SpectacularAPIView):
    content_negotiation_class = FormatParameterNegotiation
    # As drf-spectacular's, but ``?format=json`` answers ``application/json`` (what a JSON client expects);
    # ``Accept: application/vnd.oai.openapi+json`` still gets that type.
    renderer_classes = [OpenApiYamlRenderer, OpenApiYamlRenderer2, OpenApiJsonRenderer2, OpenApiJsonRenderer]
    permission_classes: list[Any] = []
    authentication_classes: list[Any] = []


class DocsView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"
    url_name = "api-schema"
    permission_classes: list[Any] = []
    authentication_classes: list[Any] = []
