"""A bench-only Django project: one DRF endpoint that inserts one row. Never part of the product."""
