from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # System checks of `check --deploy` (active demo accounts): registered when imported.
        import approvals.checks  # noqa: F401

        # Field-level change history (django-auditlog) and the scrape-time /metrics figures.
        from approvals import auditlog, metrics

        auditlog.register()
        metrics.register()
        # The "Tenant admins" group's permissions, after Django created any new model's permissions (its
        # own post_migrate receiver was connected first, by django.contrib.auth). A data migration could
        # not do it: permissions do not exist until post_migrate.
        from django.db.models.signals import post_migrate

        from approvals.accounts import tenant_admin_group_sync

        post_migrate.connect(
            tenant_admin_group_sync, sender=self, dispatch_uid="approvals.tenant_admin_group"
        )
