from django.apps import AppConfig
from django.conf import settings


class WiringConfig(AppConfig):
    """Project wiring: brings up the embedded Redis when no REDIS_URL is configured."""

    name = "acme_integration"
    label = "acme_integration"

    def ready(self) -> None:
        if settings.EMBEDDED_REDIS:
            from acme_integration import embedded_redis

            embedded_redis.ensure_running(settings.EMBEDDED_REDIS_DIR)
