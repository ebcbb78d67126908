from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from approvals import ops
from approvals.login_throttle import ThrottledAdminAuthenticationForm, ThrottledLoginView
from approvals.mcp.http import mcp_endpoint
from approvals.views import bulk, decide, edit, inbox, review, triage
from audit.views import metrics_view

# The admin's login is throttled like the reviewers' (approvals.login_throttle).
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", inbox.inbox, name="inbox"),
    path("inbox/live/", inbox.inbox_live, name="inbox-live"),
    path("proposals/<uuid:pk>/", review.proposal_review, name="proposal-review"),
    path("proposals/<uuid:pk>/status/", review.proposal_status, name="proposal-status"),
    path("proposals/<uuid:pk>/open/", review.proposal_open, name="proposal-open"),
    path("proposals/<uuid:pk>/approve/", decide.proposal_approve, name="proposal-approve"),
    path("proposals/<uuid:pk>/reject/", decide.proposal_reject, name="proposal-reject"),
    path(
        "proposals/<uuid:pk>/request_changes/",
        decide.proposal_request_changes,
        name="proposal-request-changes",
    ),
    path("proposals/<uuid:pk>/edit/", edit.proposal_edit, name="proposal-edit"),
    path("proposals/<uuid:pk>/snooze/", triage.proposal_snooze, name="proposal-snooze"),
    path("proposals/<uuid:pk>/reassign/", triage.proposal_reassign, name="proposal-reassign"),
    path("proposals/bulk/", bulk.proposals_bulk, name="proposals-bulk"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("approvals.api.urls")),
    # The MCP server (contract 7), with or without the trailing slash: clients are configured with either,
    # and APPEND_SLASH cannot redirect a POST.
    re_path(r"^mcp/?$", mcp_endpoint, name="mcp"),
    path("ops/", ops.dashboard, name="ops-dashboard"),
    path("metrics", metrics_view, name="metrics"),
]
