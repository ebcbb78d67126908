from django.core.management.base import BaseCommand, CommandError

from audit.services import verify_chains


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chains: every tenant's (or --tenant's) to its end, every broken link "
        "reported, with the number of events checked. Exits non-zero if any chain is broken."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=None, help="only this tenant's chain")

    def handle(self, *args, tenant=None, **options):
        reports = verify_chains(tenant)
        breaks = [b for report in reports for b in report.breaks]
        for report in reports:
            state = "intact" if report.intact else f"{len(report.breaks)} broken link(s)"
            counts = f"{report.checked} of {report.expected} events checked"
            self.stdout.write(f"tenant {report.tenant!r}: {counts}, {state}")
            if report.checked != report.expected:
                breaks_note = f"expected {report.expected} events, found {report.checked} (rows removed during the walk)"
                self.stderr.write(f"tenant {report.tenant!r}: {breaks_note}")
        for b in breaks:
            self.stderr.write(f"audit chain broken at event {b.event_id} (tenant {b.tenant!r}): {b.reason}")
        broken_tenants = [r for r in reports if not r.intact]
        if broken_tenants:
            first = breaks[0] if breaks else None
            where = (
                f"audit chain broken at event {first.event_id} (tenant {first.tenant!r}): {first.reason}"
                if first
                else "audit chain incomplete"
            )
            more = len(breaks) - 1 if breaks else 0
            raise CommandError(
                f"{where}"
                + (f" (and {more} more break(s)" if more else " (")
                + f"; {len(broken_tenants)} of {len(reports)} tenant(s) affected)"
            )
        total = sum(r.checked for r in reports)
        self.stdout.write(
            self.style.SUCCESS(f"audit chain intact: {len(reports)} tenant(s), {total} events checked")
        )
