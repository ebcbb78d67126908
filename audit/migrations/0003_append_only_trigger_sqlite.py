"""On SQLite (``make run``'s default database), the equivalent of 0002's PostgreSQL trigger: UPDATE and DELETE
of audit rows are refused by the database itself, not only by the admin.

SQLite has no TRUNCATE: a plain ``DELETE FROM audit_auditevent`` (e.g. ``manage.py flush``) is refused too.
To remove audit rows deliberately, the database owner drops the triggers first (``DROP`` below)."""

from django.db import migrations

CREATE = [
    """CREATE TRIGGER IF NOT EXISTS audit_event_append_only_update BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only (UPDATE refused)'); END;""",
    """CREATE TRIGGER IF NOT EXISTS audit_event_append_only_delete BEFORE DELETE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only (DELETE refused)'); END;""",
]
DROP = [
    "DROP TRIGGER IF EXISTS audit_event_append_only_update;",
    "DROP TRIGGER IF EXISTS audit_event_append_only_delete;",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in CREATE:
            schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in DROP:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]
