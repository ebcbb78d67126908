"""The worker class.

RQ's default ``Worker`` forks a work horse per job (~20 ms each here) and the child inherits the parent's
database sockets. ``SimpleWorker`` runs jobs in-process (~4 ms a job); jobs are short and idempotent, and
a crashed worker's commit is taken over by another worker once its lease expires, so the fork's isolation
buys us nothing. Database connections are checked around every job, as Django does around a request.
"""

from __future__ import annotations

from typing import Any

from django.db import close_old_connections
from rq import SimpleWorker


class AcmeWorker(SimpleWorker):
    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        close_old_connections()
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            close_old_connections()
