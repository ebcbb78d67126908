"""``python -m bench.bare.create_table``: create the bare endpoints' tables in $DATABASE_URL (no migrations),
and the one token ``POST /rows/audited/`` accepts (``BARE_TOKEN``)."""

import hashlib
import os

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare.settings"
django.setup()

from django.db import connection  # noqa: E402

from bench.bare import BARE_TOKEN  # noqa: E402
from bench.bare.models import BareAudit, BareRow, BareToken  # noqa: E402

if __name__ == "__main__":
    with connection.schema_editor() as editor:
        for model in (BareRow, BareToken, BareAudit):
            editor.create_model(model)
    BareToken.objects.create(tenant="acme", token_hash=hashlib.sha256(BARE_TOKEN.encode()).hexdigest())
