from django.urls import path, re_path

from approvals.api import docs, queries, views, webhooks
from approvals.slack import interactions as slack_interactions

urlpatterns = [
    path("tools/", views.ToolsView.as_view(), name="api-tools"),
    path("tools/<str:name>/call/", views.ToolCallView.as_view(), name="api-tool-call"),
    path("proposals/", views.ProposalListView.as_view(), name="api-proposals"),
    path("proposals/bulk/", views.ProposalBulkView.as_view(), name="api-proposals-bulk"),
    path("proposals/<uuid:pk>/", views.ProposalDetailView.as_view(), name="api-proposal-detail"),
    path("proposals/<uuid:pk>/approve/", views.ProposalApproveView.as_view(), name="api-proposal-approve"),
    path("proposals/<uuid:pk>/reject/", views.ProposalRejectView.as_view(), name="api-proposal-reject"),
    path(
        "proposals/<uuid:pk>/request_changes/",
        views.ProposalRequestChangesView.as_view(),
        name="api-proposal-request-changes",
    ),
    path("proposals/<uuid:pk>/cancel/", views.ProposalCancelView.as_view(), name="api-proposal-cancel"),
    path("proposals/<uuid:pk>/receipt/", views.ProposalReceiptView.as_view(), name="api-proposal-receipt"),
    path("webhook/", webhooks.AgentWebhookView.as_view(), name="api-agent-webhook"),
    path("webhooks/crm/", webhooks.CrmInboundView.as_view(), name="api-webhooks-crm"),
    # Slack's interactivity Request URL (signed by the tenant's Slack app; no bearer token).
    path("slack/interactions/", slack_interactions.interactions, name="api-slack-interactions"),
    path("events/", webhooks.InboundEventListView.as_view(), name="api-events"),
    path("queries/", queries.QueriesView.as_view(), name="api-queries"),
    path("schema/", docs.SchemaView.as_view(), name="api-schema"),
    path("docs/", docs.DocsView.as_view(), name="api-docs"),
    # Last: whatever else is under /api/v1/ is a JSON 404 in the error shape (not the reviewer UI's HTML page).
    re_path(r"^(?P<path>[\s\S]*)$", views.not_found, name="api-not-found"),  # [\s\S]: newlines too
]
