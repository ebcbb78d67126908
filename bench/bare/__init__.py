"""A bench-only Django project: one DRF endpoint that inserts one row. Never part of the product."""

# The one token ``POST /rows/audited/`` accepts (bench.bare.create_table stores its sha256).
BARE_TOKEN = "bare-bench-token"  # noqa: S105 (a throwaway database's only caller)
