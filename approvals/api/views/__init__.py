"""REST API (contract 3). Views are thin: validate input, call one service or selector, render.

One module per resource: ``tools`` (the catalogue, direct reads), ``proposals`` (list, submit, one, cancel,
receipt), ``decisions`` (approve, reject, request changes), ``bulk`` (several at once); ``base`` holds what they share. The other
views: ``approvals/views.py``, the reviewers' web pages (HTML, session login); ``audit/views.py``,
``GET /metrics`` (Prometheus). Every view's name stays importable from ``approvals.api.views``.
"""

from approvals.api.views.base import (
    ERROR,
    StrictCursorPagination,
    _get_visible,
    _require_agent,
    _require_person,
    _valid,
    check_page_size,
    not_found,
    where,
)
from approvals.api.views.bulk import ProposalBulkView
from approvals.api.views.decisions import ProposalApproveView, ProposalRejectView, ProposalRequestChangesView
from approvals.api.views.proposals import (
    ProposalCancelView,
    ProposalDetailView,
    ProposalListView,
    ProposalPagination,
    ProposalReceiptView,
)
from approvals.api.views.tools import ToolCallView, ToolsView, how_to_call, tools_of

__all__ = [
    "ERROR",
    "ProposalApproveView",
    "ProposalBulkView",
    "ProposalCancelView",
    "ProposalDetailView",
    "ProposalListView",
    "ProposalPagination",
    "ProposalReceiptView",
    "ProposalRejectView",
    "ProposalRequestChangesView",
    "StrictCursorPagination",
    "ToolCallView",
    "ToolsView",
    "_get_visible",
    "_require_agent",
    "_require_person",
    "_valid",
    "check_page_size",
    "how_to_call",
    "not_found",
    "tools_of",
    "where",
]
