"""The reviewer's web UI: inbox, proposal page, approve / reject / edit-then-approve, live commit status.

Views stay thin: they read through scoped queries and change nothing themselves — every decision goes
through ``approvals.services`` (which locks the row, checks the status and the reviewer, and audits).

One of three ``views``; this one is the reviewers' web pages (HTML, session login). The others --
``approvals/api/views.py``: the REST API (JSON, bearer tokens; contract 3); ``audit/views.py``:
``GET /metrics`` (Prometheus).

One module per page: ``inbox`` (the list, its filters, counts and keyset pages), ``for_you`` (the inbox's
"For you" section: routed to this reviewer, similar proposals grouped), ``bulk`` (a verdict on the ticked
ones, one result each), ``review`` (the proposal page, its quorum and its live status panel), ``decide``
(approve, reject, request changes), ``edit`` (edit, then approve), ``triage`` (snooze, reassign); ``base``
holds what they share. ``acme_integration/urls.py`` routes to them.
"""

from approvals.views.inbox import Filters
from approvals.views.review import POLL_MS, diff_rows

__all__ = ["POLL_MS", "Filters", "diff_rows"]
