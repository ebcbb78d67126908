"""Bulk review from the inbox: the proposals ticked in the "For you" section, approved or rejected (with one
reason) in one POST, each decided on its own by ``services.proposals_bulk_decide`` under every rule, and
each bound to the args hash its row showed (a hidden input per row): one that changed since is skipped and
reported. The answer is a page of per-proposal results."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from approvals import errors, selectors, services
from approvals.views.base import _forbidden, _person, _where

NOT_A_REVIEWER = "Only a reviewer can decide proposals; you review no tenant."
NOTHING_SELECTED = "Select at least one proposal."
# The POST field of a row's args hash: ``args_hash:<proposal id>``.
HASH_FIELD = "args_hash:{id}"
RESULT_TEXT = {
    "decided": "Decided",
    "skipped": "Skipped",
}


@login_required
@require_POST
def proposals_bulk(request: HttpRequest) -> HttpResponse:
    person = _person(request)
    if not selectors.PersonScope.of(person).review:
        return _forbidden(request, NOT_A_REVIEWER)
    ids = request.POST.getlist("ids")
    verdict = request.POST.get("verdict", "")
    reason = request.POST.get("reason", "").strip()
    if not ids:
        return _page(request, [], error=NOTHING_SELECTED, status=400)
    # A row without its hash gets "" and is skipped args_changed: nothing is decided on args not shown.
    hashes = {pk: request.POST.get(HASH_FIELD.format(id=pk), "") for pk in ids}
    try:
        results = services.proposals_bulk_decide(
            reviewer=person,
            ids=ids,
            verdict=verdict,
            reason=reason,
            args_hashes=hashes,
            where=_where(request),
        )
    except errors.DomainError as exc:
        return _page(request, [], error=exc.detail, status=400)
    return _page(request, results, verdict=verdict)


def _page(
    request: HttpRequest,
    results: list[dict[str, Any]],
    *,
    error: str = "",
    verdict: str = "",
    status: int = 200,
) -> HttpResponse:
    found = {
        str(p.pk): p
        for p in selectors.proposals_visible_to(request.user)
        .filter(pk__in=[r["id"] for r in results if r.get("error") != "not_found"])
        .select_related("agent")
    }
    rows = [
        {**r, "proposal": found.get(r["id"]), "label": RESULT_TEXT.get(r["result"], r["result"])}
        for r in results
    ]
    context = {
        "rows": rows,
        "error": error,
        "verdict": verdict,
        "decided": sum(1 for r in results if r["result"] == "decided"),
        "skipped": sum(1 for r in results if r["result"] != "decided"),
    }
    return render(request, "approvals/bulk_results.html", context, status=status)
