from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # System checks of `check --deploy` (active demo accounts): registered when imported.
        from approvals import checks  # noqa: F401

        # Field-level change history (django-auditlog) and the scrape-time /metrics figures.
        from approvals import auditlog, metrics

        auditlog.register()
        metrics.register()
