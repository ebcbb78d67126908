"""The approvals admins, one module per concern. Django's autodiscover imports this package: importing each
module here registers its admins (and third_party replaces Django's, django-auditlog's and django-rq's own
under the tenant scope; tests/audit/test_admin_scope.py walks admin.site._registry).

- base.py         tool filters, LargeTableAdmin (bounded cost per page), ReadOnlyAdmin
- accounts.py     tenants, memberships, agent credentials, user tokens
- proposals.py    proposals (dead-letter requeue/discard), decisions, receipts
- deliveries.py   reviewer emails, webhook deliveries (redeliver), Slack posts, inbound events, outbox
- policies.py     policy rules (ToolPolicy), reviewer groups
- connections.py  tenants' own CRM and Slack connections
- third_party.py  users, groups, django-auditlog's log entries, django-rq's queues
"""

from approvals.admin import accounts, connections, deliveries, policies, proposals, third_party

__all__ = ["accounts", "connections", "deliveries", "policies", "proposals", "third_party"]
