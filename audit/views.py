"""``GET /metrics``: Prometheus exposition format, merged across every web and worker process.

Who may read it:
* anyone while ``DEBUG`` is on (a laptop);
* a scraper sending ``Authorization: Bearer <ACME_METRICS_TOKEN>`` when that setting is set;
* a logged-in superuser (a person looking from the browser). Not any staff member: a tenant admin is
  staff, and these figures count every tenant's proposals (contract section 6; /ops/ shows them theirs).
Anyone else gets 403 (401 with a ``WWW-Authenticate`` challenge when a token is configured). The figures
are operational (counts, latencies, states): no tenant, id or argument ever appears in a label.

One of three ``views``; this one is ``GET /metrics`` (Prometheus). The others -- the package ``approvals/views/``:
the reviewers' web pages (HTML, session login); the package ``approvals/api/views/``: the REST API (JSON, bearer
tokens; contract 3).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from audit import metrics


def metrics_allowed(request: HttpRequest) -> bool:
    if settings.DEBUG:
        return True
    token = getattr(settings, "ACME_METRICS_TOKEN", "")
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_superuser)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        if getattr(settings, "ACME_METRICS_TOKEN", ""):
            response = HttpResponse("metrics: bearer token required\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return HttpResponse("metrics: operators only\n", status=403, content_type="text/plain")
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
