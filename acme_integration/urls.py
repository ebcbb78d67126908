from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from approvals import ops, views
from approvals.login_throttle import ThrottledAdminAuthenticationForm, ThrottledLoginView
from approvals.mcp.http import mcp_endpoint
from audit.views import metrics_view

# The admin's login is throttled like the reviewers' (approvals.login_throttle).
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("inbox/live/", views.inbox_live, name="inbox-live"),
    path("proposals/<uuid:pk>/", views.proposal_review, name="proposal-review"),
    path("proposals/<uuid:pk>/status/", views.proposal_status, name="proposal-status"),
    path("proposals/<uuid:pk>/open/", views.proposal_open, name="proposal-open"),
    path("proposals/<uuid:pk>/approve/", views.proposal_approve, name="proposal-approve"),
    path("proposals/<uuid:pk>/reject/", views.proposal_reject, name="proposal-reject"),
    path(
        "proposals/<uuid:pk>/request_changes/",
        views.proposal_request_changes,
        name="proposal-request-changes",
    ),
    path("proposals/<uuid:pk>/edit/", views.proposal_edit, name="proposal-edit"),
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
