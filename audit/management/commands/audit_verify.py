from django.core.management.base import BaseCommand, CommandError

from audit.services import verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; report the first broken link."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=None, help="only this tenant's chain")

    def handle(self, *args, tenant=None, **options):
        broken = verify(tenant)
        if broken is not None:
            raise CommandError(f"audit chain broken at event {broken.event_id} (tenant {broken.tenant!r}): {broken.reason}")
        self.stdout.write(self.style.SUCCESS("audit chain intact"))
