"""The reference CRM (Zendesk Tickets API subset) and Slack Web API (chat.postMessage), as a separate
process: ``python manage.py sandbox [--port 8765]``. Paths: ``/crm/api/v2/...``, ``/slack/api/...``, and
test controls under ``/_sandbox/...`` (clearly outside the Zendesk and Slack surfaces)."""
