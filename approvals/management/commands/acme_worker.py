"""`python manage.py acme_worker`: an RQ worker on all of the project's queues, with RQ's scheduler, plus
the housekeeping loop (outbox hand-off, crash recovery, expiry) that needs no extra service."""

import logging
import signal
import threading
import time

import django_rq
import redis
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from approvals import notifications, outbox, services, webhooks
from approvals.worker import AcmeWorker

logger = logging.getLogger("approvals.worker")


def housekeeping_pass() -> None:
    close_old_connections()
    outbox.drain()
    services.commits_redispatch()
    webhooks.redispatch()
    services.proposal_expire_due()
    notifications.remind_due()
    notifications.escalate_due()


class Command(BaseCommand):
    help = "Run a worker on all queues (with the scheduler) and the housekeeping loop."

    def add_arguments(self, parser):
        parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
        parser.add_argument("--name", default=None)

    def handle(self, *args, burst=False, name=None, **options):
        stop = threading.Event()

        def housekeeping() -> None:
            while not stop.is_set():
                try:
                    housekeeping_pass()
                except Exception:
                    logger.exception("housekeeping pass failed")
                stop.wait(settings.ACME_HOUSEKEEPING_INTERVAL)

        thread = threading.Thread(target=housekeeping, name="housekeeping", daemon=True)
        thread.start()
        previous = signal.getsignal(signal.SIGTERM)
        try:
            while True:
                try:
                    connection = django_rq.get_connection("commits")
                    queues = [django_rq.get_queue(q) for q in settings.ACME_QUEUES]
                    worker = AcmeWorker(queues, connection=connection, name=name)
                    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
                    break  # a warm shutdown (SIGTERM/SIGINT) or the end of a burst
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    # Redis is down or restarting: keep the process (and its housekeeping) alive and retry;
                    # approvals made meanwhile wait in the outbox.
                    logger.warning("redis unavailable (%s); retrying in 1 s", type(exc).__name__)
                    time.sleep(1)
        finally:
            stop.set()
            signal.signal(signal.SIGTERM, previous)
