"""``python -m bench.bare.create_table``: create the bare endpoint's table in $DATABASE_URL (no migrations)."""

import os

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare.settings"
django.setup()

from django.db import connection  # noqa: E402

from bench.bare.models import BareRow  # noqa: E402

if __name__ == "__main__":
    with connection.schema_editor() as editor:
        editor.create_model(BareRow)
