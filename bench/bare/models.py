from typing import ClassVar

from django.db import models


class BareRow(models.Model):
    """The one row the bare endpoint inserts. No migrations: ``bench.bare.create_table`` creates the table
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
