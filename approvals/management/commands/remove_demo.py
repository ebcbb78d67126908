from typing import Any

from django.core.management.base import BaseCommand

from approvals.demo import demo_accounts_deactivate
from audit.services import Where


class Command(BaseCommand):
    help = (
        "Deactivate the demo accounts seed_demo made (people, the demo agent, the demo tokens): they can no "
        "longer sign in or call the API. Their records stay. Idempotent."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        done = demo_accounts_deactivate(where=Where(channel="cli"))
        for account in done:
            self.stdout.write(f"deactivated {account}")
        self.stdout.write(f"{len(done)} demo accounts deactivated" if done else "no active demo account")
