"""``manage.py seed_demo``: the demo tenant for development (DEBUG on only; see approvals.demo).

Idempotent and safe to run on every ``make run``: it creates what is missing and changes nothing a person
owns. An existing person's password is never set again (an operator's change stays); a deactivated demo
account stays deactivated; the demo API tokens are the ones issued before while they still work, so a
restart keeps a developer's exported ``$TOKEN`` valid.
"""

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from adapters import errors as adapter_errors
from adapters.warehouse.seed import warehouse_seed
from approvals import demo, services
from approvals.accounts import agent_create, person_create, tenant_create, user_token_create
from approvals.models import AgentCredential, Role, UserToken
from approvals.selectors import tenant_member
from audit.services import Where

REFUSED_WITHOUT_DEBUG = (
    "seed_demo creates accounts whose password is published (the README); it runs only with DEBUG=1 "
    "(development, e.g. `make run`). Nothing was created. In production create your own people with "
    "`manage.py createsuperuser` and `manage.py create_reviewer`."
)
DEFAULT_PASSWORD = "acme-demo-review"  # noqa: S105 (the published demo password, development only)

SAMPLES: list[dict[str, Any]] = [
    {
        "key": "demo-sample-1",
        "tool": "crm.create_ticket",
        "args": {
            "subject": "Printer on fire in the Leeds office",
            "description": "Smoke from the 3rd floor printer.",
            "priority": "critical",
            "customer_email": "Alice@Example.com",
            "tags": ["facilities"],
        },
        "rationale": "The customer reported a fire hazard in chat; this needs a ticket now.",
        "on_behalf_of": "alice",
    },
    {
        "key": "demo-sample-2",
        "tool": "crm.create_ticket",
        "args": {
            "subject": "Invoice 1042 shows the wrong VAT rate",
            "description": "Customer says 20% was applied, expected 5%.",
            "priority": "medium",
            "customer_email": "billing@globex.example",
        },
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
    help = (
        "Development only (DEBUG=1): demo tenant `acme` with a reviewer, an admin, a requester, an agent and "
        "sample proposals; prints credentials. Never changes an existing person's password."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(REFUSED_WITHOUT_DEBUG)
        password = os.environ.get("ACME_DEMO_PASSWORD", DEFAULT_PASSWORD)
        tenant, _ = tenant_create(slug=demo.DEMO_TENANT, name="ACME Corp")
        reviewer = self._person(tenant, "reviewer", Role.REVIEWER, password)
        admin = self._person(tenant, "admin", Role.ADMIN, password, staff=True)
        self._person(tenant, "alice", Role.REQUESTER, password)
        self._demo_slack_connection(tenant.slug, reviewer)

        kept = demo.kept_tokens()
        reviewer_token = kept.get("reviewer", "")
        if not demo.user_token_valid(reviewer_token, user=reviewer):
            # The kept token is gone (a new database, a deleted var/): issue one and retire the older ones,
            # whose raw value nobody can be shown again.
            UserToken.objects.filter(user=reviewer, name=demo.DEMO_TOKEN_NAME).update(is_active=False)
            reviewer_token = user_token_create(user=reviewer, name=demo.DEMO_TOKEN_NAME)
        agent = AgentCredential.objects.filter(tenant=tenant, name=demo.DEMO_AGENT).first()
        agent_token = kept.get("agent", "")
        if agent is None or (agent.is_active and not demo.agent_token_valid(agent_token)):
            agent, agent_token = agent_create(tenant=tenant, name=demo.DEMO_AGENT, tools=["*"])
        elif not agent.is_active:
            agent_token = ""
            self.stderr.write(
                f"the demo agent {demo.DEMO_AGENT} is deactivated: left as it is, no token shown"
            )
        demo.keep_tokens({"reviewer": reviewer_token, "agent": agent_token})

        created = 0
        for sample in SAMPLES if agent.is_active else []:
            behalf = (
                tenant_member(tenant=tenant, username=sample["on_behalf_of"])
                if sample.get("on_behalf_of")
                else None
            )
            try:
                result = services.proposal_submit(
                    agent=agent,
                    tool=sample["tool"],
                    args=sample["args"],
                    rationale=sample["rationale"],
                    on_behalf_of=behalf,
                    idempotency_key=sample["key"],
                    where=Where(channel="cli"),
                )
                created += int(result.created)
            except adapter_errors.AdapterError as exc:  # a tool not available in this build
                self.stderr.write(f"sample {sample['key']} skipped: {exc}")
        self.stdout.write(f"tenant acme ready; {created} new sample proposals")
        seeded = warehouse_seed(tenant=tenant.slug)
        self.stdout.write(
            f"warehouse: {seeded} new rows for acme" if seeded else "warehouse: acme already seeded"
        )
        self._demo_crm_connection(tenant.slug)
        self.stdout.write(f"reviewer login: username=reviewer {self._password_note(reviewer, password)}")
        self.stdout.write(f"admin login:    username=admin {self._password_note(admin, password)}  (/admin/)")
        self.stdout.write(f"reviewer API token: {reviewer_token}")
        self.stdout.write("demo agent token (last line):")
        self.stdout.write(agent_token or "<none: the demo agent is deactivated>")

    # --- the demo tenant's own CRM (issue 17) -------------------------------------------------------------

    def _demo_crm_connection(self, slug: str) -> None:
        """acme's own connection to the sandbox CRM, so the demo can update the sandbox's tickets (on a CRM
        tenants share, only the tickets the gateway created are a tenant's). Created once; an existing
        connection (perhaps set by hand) is left as it is."""
        from django.conf import settings

        from adapters import connections
        from adapters.models import Connection
        from audit import services as audit

        if Connection.objects.filter(tenant=slug, system="crm").exists():
            return
        connections.connection_set(
            tenant=slug,
            system="crm",
            base_url=settings.CRM_BASE_URL,
            token=settings.CRM_API_TOKEN,
            actor=audit.Actor(type="system", label="seed_demo"),
            where=Where(channel="cli"),
        )
        self.stdout.write(f"crm: {slug} has its own connection to {settings.CRM_BASE_URL}")

    def _demo_slack_connection(self, slug: str, reviewer: Any) -> None:
        """acme's own Slack, the sandbox's workspace: new proposals are posted to its #general with their
        buttons, and the sandbox's page /slack/demo clicks them as the demo reviewer (signed as Slack
        signs). The sandbox's team id is given: it is not running yet when the demo is seeded, so
        ``auth.test`` could not tell it. Created once; an existing connection is left as it is."""
        from django.conf import settings

        from adapters import connections
        from adapters.models import Connection
        from adapters.sandbox import slack_review
        from approvals.models import Membership
        from audit import services as audit

        if not Connection.objects.filter(tenant=slug, system="slack").exists():
            connections.connection_set(
                tenant=slug,
                system="slack",
                base_url=settings.SLACK_API_URL,
                token=settings.SLACK_BOT_TOKEN,
                signing_secret=slack_review.signing_secret(),
                review_channel="#general",
                team_id=slack_review.TEAM_ID,
                actor=audit.Actor(type="system", label="seed_demo"),
                where=Where(channel="cli"),
            )
            self.stdout.write(f"slack: {slug}'s review channel is the sandbox's #general")
        if not Membership.objects.filter(tenant__slug=slug, slack_user_id=slack_review.DEMO_USER).exists():
            Membership.objects.filter(user=reviewer, tenant__slug=slug, slack_user_id="").update(
                slack_user_id=slack_review.DEMO_USER
            )

    def _person(self, tenant: Any, username: str, role: str, password: str, *, staff: bool = False) -> Any:
        """The demo person, created with the demo password if missing; an existing one keeps theirs."""
        exists = get_user_model().objects.filter(username=username).exists()
        user = person_create(
            tenant=tenant, username=username, role=role, staff=staff, password=None if exists else password
        )
        if not user.is_active:
            self.stderr.write(f"the demo account {username} is deactivated: left as it is")
        elif not user.email:
            # So make run shows the reviewers' email (printed by the console backend under DEBUG).
            user.email = f"{username}@demo.example"
            user.save(update_fields=["email"])
        return user

    @staticmethod
    def _password_note(user: Any, password: str) -> str:
        if not user.is_active:
            return "(deactivated)"
        if user.check_password(password):
            return f"password={password}"
        return "password=(changed since it was created; not shown)"
