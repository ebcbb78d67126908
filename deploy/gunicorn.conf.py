"""gunicorn settings for the gateway's web process (README, "Deploy"):

    gunicorn -c deploy/gunicorn.conf.py acme_integration.wsgi:application

Each value can be changed from the environment without editing this file (ACME_BIND, ACME_WEB_*).
"""

import multiprocessing
import os

# Behind the TLS-terminating proxy; the proxy, not gunicorn, faces the Internet.
bind = [os.environ.get("ACME_BIND", "0.0.0.0:8000")]

# Threads, not only processes: a request mostly waits (PostgreSQL, Redis, a preview's live read of the CRM
# bounded by ACME_PREVIEW_DEADLINE, a `?wait=` poll of up to 30 s), which a thread does cheaply. Each
# thread may hold one PostgreSQL connection (CONN_MAX_AGE): workers x threads per machine must stay
# within the server's max_connections, beside the acme_worker processes.
worker_class = "gthread"
workers = int(os.environ.get("ACME_WEB_WORKERS", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("ACME_WEB_THREADS", "8"))

# A worker that does not report for this long is killed and replaced. The longest request we serve on
# purpose is a 30 s `?wait=` poll; the default 30 s would cut it at the edge.
timeout = int(os.environ.get("ACME_WEB_TIMEOUT", "60"))
# On SIGTERM (a deploy, systemd stop) requests in flight get this long to finish.
graceful_timeout = int(os.environ.get("ACME_WEB_GRACEFUL_TIMEOUT", "30"))
# Idle keep-alive connections from the proxy: a little longer than none, shorter than the proxy's own.
keepalive = 5
# Replace each worker process after about this many requests: bounds any slow growth of memory.
max_requests = 2000
max_requests_jitter = 200

# The worker heartbeat file in memory, not on a container's overlay filesystem (which can stall it).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (gunicorn's documented advice)

# gunicorn 27's control socket has one default path per user (~/.gunicorn): two instances on one machine
# would share it. Nothing here uses it.
control_socket_disable = True

# Errors to stderr. No access log by default: request lines can carry query strings with emails, and the
# app's own logs are JSON with secrets and PII redacted (audit.logging); the proxy logs requests. Set
# ACME_WEB_ACCESS_LOG=- to have gunicorn log them too.
errorlog = "-"
accesslog = os.environ.get("ACME_WEB_ACCESS_LOG") or None
