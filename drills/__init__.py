"""Fault drills: real processes (gunicorn, acme_worker, the sandbox CRM) on PostgreSQL + a Redis the drill
may stop, each drill one fault, each printing one row of what was done, what was expected and what
happened. ``make drills`` (``python -m drills``) runs them all; tests/e2e/test_drills.py runs them in CI.
"""
