from django.core.management.base import BaseCommand, CommandError

from approvals.accounts import person_create, user_token_create
from approvals.models import Role, Tenant


class Command(BaseCommand):
    help = "Create a reviewer in a tenant; prints an API token alone on the last line (stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", default=None)
        parser.add_argument("--role", default=Role.REVIEWER, choices=[Role.REVIEWER, Role.ADMIN])

    def handle(self, *args, tenant, username, password, role, **options):
        try:
            tenant_obj = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant {tenant!r}; create it with create_tenant") from None
        user = person_create(tenant=tenant_obj, username=username, role=role, password=password)
        token = user_token_create(user=user)
        self.stdout.write(f"{role} {user.get_username()} in {tenant_obj.slug}")
        self.stdout.write(token)
