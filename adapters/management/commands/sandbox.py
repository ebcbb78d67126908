"""``python manage.py sandbox [--port 8765]``: the reference CRM and Slack in their own process."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from adapters.sandbox.server import make_server


class Command(BaseCommand):
    help = "Run the sandbox CRM (Zendesk Tickets API subset) and Slack (chat.postMessage) on one port."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed).")

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        server = make_server(
            host, port, crm_token=settings.CRM_API_TOKEN, slack_token=settings.SLACK_BOT_TOKEN
        )
        bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
        # Tests read this first line to learn the port; keep its shape.
        self.stdout.write(f"sandbox listening on http://{bound_host}:{bound_port}")
        self.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
