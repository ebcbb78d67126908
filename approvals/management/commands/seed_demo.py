import os
from typing import Any

from django.core.management.base import BaseCommand

from adapters import errors as adapter_errors
from adapters.warehouse.seed import warehouse_seed
from approvals import services
from approvals.accounts import agent_create, person_create, tenant_create, user_token_create
from approvals.models import Role, UserToken
from audit.services import Where

SAMPLES: list[dict[str, Any]] = [
    {
        "key": "demo-sample-1",
        "tool": "crm.create_ticket",
        "args": {"subject": "Printer on fire in the Leeds office", "description": "Smoke from the 3rd floor printer.",
                 "priority": "critical", "customer_email": "Alice@Example.com", "tags": ["facilities"]},
        "rationale": "The customer reported a fire hazard in chat; this needs a ticket now.",
        "on_behalf_of": "alice",
    },
    {
        "key": "demo-sample-2",
        "tool": "crm.create_ticket",
        "args": {"subject": "Invoice 1042 shows the wrong VAT rate", "description": "Customer says 20% was applied, expected 5%.",
                 "priority": "medium", "customer_email": "billing@globex.example"},
        "rationale": "Billing question that needs a human in finance.",
    },
    {
        "key": "demo-sample-3",
        "tool": "slack.post_message",
        "args": {"channel": "#support", "text": "Heads-up: ticket volume is up 40% since 09:00."},
        "rationale": "Volume spike detected in the last hour.",
    },
]


class Command(BaseCommand):
    help = "Demo tenant `acme` with a reviewer, an admin, a requester, an agent and sample proposals; prints credentials."

    def handle(self, *args, **options):
        reviewer_pw = os.environ.get("ACME_DEMO_PASSWORD", "acme-demo-review")
        tenant, _ = tenant_create(slug="acme", name="ACME Corp")
        reviewer = person_create(tenant=tenant, username="reviewer", role=Role.REVIEWER, password=reviewer_pw)
        person_create(tenant=tenant, username="admin", role=Role.ADMIN, password=reviewer_pw, staff=True)
        person_create(tenant=tenant, username="alice", role=Role.REQUESTER, password=reviewer_pw)
        # Each run shows fresh tokens (only hashes are stored): retire the previous demo ones.
        UserToken.objects.filter(user=reviewer, name="demo").update(is_active=False)
        reviewer_token = user_token_create(user=reviewer, name="demo")
        agent, agent_token = agent_create(tenant=tenant, name="demo-agent", tools=["*"])
        created = 0
        for sample in SAMPLES:
            from approvals.selectors import tenant_member

            behalf = tenant_member(tenant=tenant, username=sample["on_behalf_of"]) if sample.get("on_behalf_of") else None
            try:
                result = services.proposal_submit(
                    agent=agent, tool=sample["tool"], args=sample["args"], rationale=sample["rationale"],
                    on_behalf_of=behalf, idempotency_key=sample["key"], where=Where(channel="cli"),
                )
                created += int(result.created)
            except adapter_errors.AdapterError as exc:  # a tool not available in this build
                self.stderr.write(f"sample {sample['key']} skipped: {exc}")
        self.stdout.write(f"tenant acme ready; {created} new sample proposals")
        seeded = warehouse_seed(tenant=tenant.slug)
        self.stdout.write(f"warehouse: {seeded} new rows for acme" if seeded else "warehouse: acme already seeded")
        self.stdout.write(f"reviewer login: username=reviewer password={reviewer_pw}")
        self.stdout.write(f"admin login:    username=admin password={reviewer_pw}  (/admin/)")
        self.stdout.write(f"reviewer API token: {reviewer_token}")
        self.stdout.write("demo agent token (last line):")
        self.stdout.write(agent_token)
