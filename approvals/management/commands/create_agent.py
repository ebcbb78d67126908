from django.core.management.base import BaseCommand, CommandError

from adapters import registry
from approvals.accounts import agent_create
from approvals.models import Tenant


class Command(BaseCommand):
    help = "Create an agent in a tenant; prints its API token alone on the last line (stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--tools", required=True, help="comma separated tool names, or *")

    def handle(self, *args, tenant, name, tools, **options):
        try:
            tenant_obj = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant {tenant!r}; create it with create_tenant") from None
        # Either spelling of a tool (crm_create_ticket); stored under the dotted name.
        names = [registry.canonical(t.strip()) for t in tools.split(",") if t.strip()]
        known = {t.name for t in registry.tools()}
        unknown = [n for n in names if n != "*" and n not in known]
        if unknown or not names:
            raise CommandError(f"unknown tools {unknown}; known: {', '.join(sorted(known))} or *")
        agent, token = agent_create(tenant=tenant_obj, name=name, tools=names)
        self.stdout.write(f"agent {agent.name} in {tenant_obj.slug}, tools: {', '.join(names)}")
        self.stdout.write(token)
