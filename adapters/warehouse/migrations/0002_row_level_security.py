"""PostgreSQL only: row-level security on the warehouse tables, read through a role that cannot bypass it.

* ``acme_warehouse_reader``: NOLOGIN, no BYPASSRLS, SELECT on the three tables and nothing else. The query
  path does ``SET LOCAL ROLE acme_warehouse_reader`` inside its read-only transaction, so even a superuser
  connection (which always bypasses RLS) reads through the policies.
* One policy per table: a row is visible (and writable) only when its ``tenant_id`` equals the
  transaction's ``acme.tenant`` setting (``set_config('acme.tenant', slug, true)``); unset, nothing matches.
* FORCE ROW LEVEL SECURITY: the tables' owner (the app's own user, when it is not a superuser) is held to
  the policies too, so seeding sets ``acme.tenant`` per tenant (``seed.py``).

Roles are cluster-wide: creating one needs CREATEROLE (or a superuser); the role is created only if missing.
SQLite has none of this; there the compiler's tenant filter is the only isolation.
"""

from django.db import migrations

READER = "acme_warehouse_reader"
TABLES = ["warehouse_orders", "warehouse_customers", "warehouse_tickets"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    run(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'acme_warehouse_reader') THEN
                CREATE ROLE acme_warehouse_reader NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
            END IF;
            -- The app's user must be a member to SET ROLE (a superuser needs nothing).
            IF NOT pg_has_role(current_user, 'acme_warehouse_reader', 'MEMBER') THEN
                EXECUTE 'GRANT acme_warehouse_reader TO ' || quote_ident(current_user);
            END IF;
            EXECUTE 'GRANT USAGE ON SCHEMA ' || quote_ident(current_schema()) || ' TO acme_warehouse_reader';
        END
        $$;
        """
    )
    for table in TABLES:
        run(f"REVOKE ALL ON {table} FROM acme_warehouse_reader")
        run(f"GRANT SELECT ON {table} TO acme_warehouse_reader")
        run(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        run(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        run(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        run(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (tenant_id = current_setting('acme.tenant', true)) "
            "WITH CHECK (tenant_id = current_setting('acme.tenant', true))"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"REVOKE ALL ON {table} FROM acme_warehouse_reader")
    # The role is cluster-wide (other databases may use it): it stays.


class Migration(migrations.Migration):
    dependencies = [("warehouse", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
