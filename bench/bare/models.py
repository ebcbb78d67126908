from typing import ClassVar

from django.db import models


class BareRow(models.Model):
    """The one row the bare endpoint inserts. No migrations: ``bench.bare.create_table`` creates the tables
    with the schema editor in the bench's throwaway database."""

    tool = models.CharField(max_length=64)
    args = models.JSONField()
    rationale = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Declared for mypy only (Django adds the default manager): the bench app is not in the settings
    # django-stubs reads, so its plugin does not add it.
    objects: ClassVar[models.Manager["BareRow"]]

    class Meta:
        app_label = "bench_bare"
        db_table = "bench_bare_row"

    def __str__(self) -> str:
        return f"{self.tool} #{self.pk}"


class BareToken(models.Model):
    """A caller of ``POST /rows/audited/``: a bearer token stored as its sha256, as any serious API keeps it."""

    tenant = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)

    objects: ClassVar[models.Manager["BareToken"]]

    # What DRF's IsAuthenticated asks of ``request.user``.
    is_authenticated = True

    class Meta:
        app_label = "bench_bare"
        db_table = "bench_bare_token"

    def __str__(self) -> str:
        return f"token of {self.tenant}"


class BareAudit(models.Model):
    """The one audit record ``POST /rows/audited/`` writes with its row, in the same transaction."""

    tenant = models.CharField(max_length=64)
    action = models.CharField(max_length=64)
    subject_id = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True)
    data = models.JSONField(default=dict)
    at = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[models.Manager["BareAudit"]]

    class Meta:
        app_label = "bench_bare"
        db_table = "bench_bare_audit"

    def __str__(self) -> str:
        return f"{self.action} {self.subject_id}"
