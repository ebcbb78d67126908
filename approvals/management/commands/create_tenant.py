from django.core.management.base import BaseCommand

from approvals.accounts import tenant_create


class Command(BaseCommand):
    help = "Create a tenant (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")

    def handle(self, *args, slug, name, **options):
        tenant, created = tenant_create(slug=slug, name=name)
        self.stdout.write(f"{'created' if created else 'exists'}: tenant {tenant.slug} ({tenant.name})")
