import sys

from django.apps import AppConfig
from django.conf import settings


class WiringConfig(AppConfig):
    """Project wiring: brings up the embedded Redis when no REDIS_URL is configured and this process uses
    Redis (not ``manage.py check``, ``migrate``, ``shell``...: embedded_redis.needs_redis)."""

    name = "acme_integration"
    label = "acme_integration"

    def ready(self) -> None:
        if settings.EMBEDDED_REDIS:
            from acme_integration import embedded_redis

            if embedded_redis.needs_redis(sys.argv):
                embedded_redis.ensure_running(settings.EMBEDDED_REDIS_DIR)
