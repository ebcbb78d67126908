"""The warehouse read path (issue 5): agents send a query *plan*, never SQL.

``plan`` (the pydantic contract) -> ``compiler`` (checked against the introspected ``schema``, compiled to
parameterized SQL with the tenant filter always added) -> ``executor`` (read-only, statement timeout, on
PostgreSQL row-level security through a role that cannot bypass it) -> ``service`` (cache, audit).
"""
