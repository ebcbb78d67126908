from django.apps import AppConfig


class AdaptersConfig(AppConfig):
    name = "adapters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the tool modules registers every tool exactly once; the checks module registers the
        # connections' deploy checks.
        from adapters import checks, tools  # noqa: F401
