"""Settings for spotbackend, read once from the environment (12-factor).

Every variable is documented in README.md and .env.example. With nothing set, the server runs on
embedded defaults: a SQLite file under ./var and a filesystem Celery broker (no external service).
"""
from pathlib import Path

import environ

from spotbackend import logs as _logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("SPOTBACKEND_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env(
    DEBUG=(bool, False),
    TERMINATION_REPLICA_AUTO_CREATE=(bool, True),
    TERMINATION_NOTIFICATION_WEBHOOK=(str, ""),
    AUTO_CLEANUP_ENABLED=(bool, True),
    CLEANUP_SNAPSHOTS_DAYS=(int, 7),
    CLEANUP_AMIS_DAYS=(int, 30),
    SAVINGS_CALCULATION_HOUR=(int, 0),
    AGENT_HEARTBEAT_TIMEOUT=(int, 300),
    STALE_AGENTS_INTERVAL_HOURS=(int, 6),
    SPOT_PRICE_RETENTION_DAYS=(int, 90),
    ONDEMAND_PRICE_RETENTION_DAYS=(int, 90),
    POOL_COOLDOWN_SECONDS=(int, 600),
    PRICE_FRESHNESS_SECONDS=(int, 3600),
    SPOT_MAX_ONDEMAND_RATIO=(float, 1.5),
    MARKET_EVIDENCE_QUORUM=(int, 2),
    COMMAND_DELIVERY_TIMEOUT=(int, 1800),
    REPLICA_STUCK_MINUTES=(int, 15),
    CONN_MAX_AGE=(int, 60),
    NOTIFICATION_RETRY_HOURS=(float, 24),
    DB_CONNECT_TIMEOUT=(int, 3),
    DB_READ_TIMEOUT=(int, 10),
    DB_WRITE_TIMEOUT=(int, 10),
    DATA_UPLOAD_MAX_MEMORY_SIZE=(int, 4 * 1024 * 1024),
    STORED_PAYLOAD_MAX_BYTES=(int, 64 * 1024),
    NUM_PROXIES=(int, 0),
    WEBHOOK_ALLOW_PRIVATE_TARGETS=(bool, False),
    WEBHOOK_ALLOW_HTTP=(bool, False),
    WEBHOOK_DISABLE_AFTER_HOURS=(float, 24),
)
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))

DEBUG = env("DEBUG")

# --- Deploy safety (docs/OPERATIONS.md "Production settings") ----------------------------------
# Fail safe: without DEBUG, the server refuses to start on the development key. `make run` writes a
# random key to $SPOTBACKEND_VAR_DIR/secret_key (mode 0600); the tests set their own (spotbackend/pytest_env.py).
DEV_SECRET_KEY = "dev-insecure-spotbackend-key-change-me"
_var_secret_key = VAR_DIR / "secret_key"
SECRET_KEY = env("SECRET_KEY", default="") or (
    _var_secret_key.read_text().strip() if _var_secret_key.is_file() else ""
)
if not SECRET_KEY and DEBUG:
    SECRET_KEY = DEV_SECRET_KEY
if SECRET_KEY in ("", DEV_SECRET_KEY) and not DEBUG:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SECRET_KEY is not set (or is the development key) and DEBUG is false: set the SECRET_KEY "
        "environment variable to a long random string (see .env.example)."
    )
# No wildcard default: production names its hosts; `make run` sets ALLOWED_HOSTS=* for itself.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Behind a TLS-terminating proxy: the header it sets to "https" (e.g. X-Forwarded-Proto); empty = none.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers and the installers probe /health over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
# --- end of deploy safety ------------------------------------------------------------------------

INSTALLED_APPS = [
    "backoffice.admin_views.SpotAdminConfig",  # django.contrib.admin with the fleet on its index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "clients",
    "agents",
    "savings",
    "cleanup",
    "notifications",
]

MIDDLEWARE = [
    # Request id (X-Request-ID in and out) and the call's ids on every log record (spotbackend/logs.py).
    "spotbackend.logs.RequestIdMiddleware",
    "spotbackend.middleware.DatabaseUnavailableMiddleware",
    "spotbackend.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (the admin's CSS and JS) from the app itself, in `make run`, Docker and production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's session, user and message middleware, skipped for /api/, /health and
    # /metrics: only the admin's pages need them (spotbackend/middleware.py).
    "spotbackend.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "spotbackend.middleware.AuthenticationMiddleware",
    "spotbackend.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "spotbackend.urls"
# The agents and the installers never follow a redirect to a slashed URL.
APPEND_SLASH = False
# Largest request body accepted (bytes); a larger one is answered 413 JSON without being read.
DATA_UPLOAD_MAX_MEMORY_SIZE = env("DATA_UPLOAD_MAX_MEMORY_SIZE")
# Free-form agent data stored as is (switch report, cleanup details) is capped at this many bytes.
STORED_PAYLOAD_MAX_BYTES = env("STORED_PAYLOAD_MAX_BYTES")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],  # the admin pages; spotbackend/redoc.html (offline ReDoc)
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

WSGI_APPLICATION = "spotbackend.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'spotbackend.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env("CONN_MAX_AGE")
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # Django's MySQL backend plus a connect circuit breaker (spotbackend/db/base.py).
    DATABASES["default"]["ENGINE"] = "spotbackend.db"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES', time_zone='+00:00'",
            "isolation_level": "read committed",
        }
    )
    # Fail fast on a database that is down or hung (503 + Retry-After); 0 = no timeout.
    for _option, _name in (("connect_timeout", "DB_CONNECT_TIMEOUT"), ("read_timeout", "DB_READ_TIMEOUT"),
                           ("write_timeout", "DB_WRITE_TIMEOUT")):
        if env(_name) > 0:
            DATABASES["default"]["OPTIONS"][_option] = env(_name)
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    if env("TEST_DATABASE_NAME", default=""):
        DATABASES["default"]["TEST"]["NAME"] = env("TEST_DATABASE_NAME")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Pre-compressed (gzip) copies; no manifest, so templates render before collectstatic too (tests).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Redis: Celery broker and cache -------------------------------------------------------------
# Redis carries the Celery broker and Django's cache (the agents' calls' entries, agents/cache.py, and
# the failed-token and admin-login throttles). With Redis down the database answers everything.
REDIS_URL = env("REDIS_URL", default="")
REDIS_SOCKET_TIMEOUT = 0.25  # seconds; a hung Redis costs a throttled call at most this
# A heartbeat that changes nothing but the time is written with the others this many seconds later
# (agents/services/heartbeats.py): the lag of last_heartbeat_at; 0 writes each one at once.
HEARTBEAT_BUFFER_SECONDS = 2.0
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # "agents": the agents' calls' entries (agents/cache.py); "default": the throttles. Errors reach
    # the callers, each of which treats them as a miss.
    _redis = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL,
              "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT, "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT}}
    CACHES = {"default": _redis, "agents": _redis}
else:
    # Embedded default: kombu's filesystem transport needs no server (single host only).
    CELERY_BROKER_URL = "filesystem://"
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange tables (and the workers' control channel); the default is ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    # No cache shared by the web processes: the agents' calls read the database (a per-process copy
    # would miss the other processes' changes); the throttles count per process.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
              "agents": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# django-celery-beat's DatabaseScheduler behind a leader lock (one beat sends, even if two run) and a
# per job+slot idempotency key (spotbackend/beat.py).
CELERY_BEAT_SCHEDULER = "spotbackend.beat:LockedDatabaseScheduler"
BEAT_LOCK_TTL = env.float("BEAT_LOCK_TTL", default=30.0)
# Periodic tasks of the agents app live outside agents/tasks.py (which autodiscovery finds).
CELERY_IMPORTS = ["agents.periodic"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing from a request must not hang on a broker that is down or hung (docs/SECURITY.md):
# no publish retries, short socket timeouts; an unpublished notification is re-sent by the sweep.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 1
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2}
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["clients.authentication.ClientTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["clients.authentication.IsClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["spotbackend.parsers.SafeJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "spotbackend.negotiation.JsonFirstNegotiation",
    "EXCEPTION_HANDLER": "spotbackend.exceptions.json_exception_handler",
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "token_failure": env("TOKEN_FAILURE_RATE", default="30/min"),
        "admin_login": env("ADMIN_LOGIN_RATE", default="10/h"),
    },
    # Client address = REMOTE_ADDR, or the entry NUM_PROXIES trusted proxies added to X-Forwarded-For.
    "NUM_PROXIES": env("NUM_PROXIES"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "spotbackend API",
    "DESCRIPTION": "Central server of the spot-instance optimizer: agents, dashboard and installers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api",  # operations grouped by what follows /api/: agents, client
    # Swagger UI and ReDoc from this server's static files (drf-spectacular-sidecar): they work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.AgentStatus",
        "ReplicaStatusEnum": "agents.models.ReplicaStatus",
        "CommandStatusEnum": "agents.models.CommandStatus",
        "ReportedStatusEnum": "agents.api.serializers.REPORTED_STATUSES",
        "NewReplicaStatusEnum": "agents.api.replicas.NEW_REPLICA_STATUSES",
        "HealthCheckEnum": "spotbackend.health.CHECK",
    },
}

# Plain lines (`text`, the default) or one JSON object per line (`json`); every record carries the
# request id, agent id, client id and Celery task id of its context (spotbackend/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower()
LOGGING = _logs.logging_config(fmt=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))
# Errors to Sentry (Django and Celery integrations) when set; nowhere otherwise.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
_logs.sentry_init(dsn=SENTRY_DSN, environment=env.str("SENTRY_ENVIRONMENT", default=""),
                  release=env.str("SENTRY_RELEASE", default=""),
                  traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0))

# --- Product settings (docs/ARCHITECTURE.md §7) ----------------------------------------------------
TERMINATION_REPLICA_AUTO_CREATE = env("TERMINATION_REPLICA_AUTO_CREATE")
TERMINATION_NOTIFICATION_WEBHOOK = env("TERMINATION_NOTIFICATION_WEBHOOK")
# A notification is retried with backoff (5 s doubling, at most 1 h apart) for this long, then failed.
NOTIFICATION_RETRY_HOURS = env("NOTIFICATION_RETRY_HOURS")
NOTIFICATION_WEBHOOK_TIMEOUT = 5
# Clients' own webhook endpoints (issue 20; docs/SECURITY.md "Webhooks"). Development only: allow
# endpoints on loopback/private addresses, and plain http. An endpoint failing this long is disabled.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env("WEBHOOK_ALLOW_PRIVATE_TARGETS")
WEBHOOK_ALLOW_HTTP = env("WEBHOOK_ALLOW_HTTP")
WEBHOOK_DISABLE_AFTER_HOURS = env("WEBHOOK_DISABLE_AFTER_HOURS")
AUTO_CLEANUP_ENABLED = env("AUTO_CLEANUP_ENABLED")
CLEANUP_SNAPSHOTS_DAYS = env("CLEANUP_SNAPSHOTS_DAYS")
CLEANUP_AMIS_DAYS = env("CLEANUP_AMIS_DAYS")
SAVINGS_CALCULATION_HOUR = env("SAVINGS_CALCULATION_HOUR")
AGENT_HEARTBEAT_TIMEOUT = env("AGENT_HEARTBEAT_TIMEOUT")
STALE_AGENTS_INTERVAL_HOURS = env("STALE_AGENTS_INTERVAL_HOURS")
# Price samples older than this many days are deleted daily (0 = keep forever; agents/services/retention.py).
SPOT_PRICE_RETENTION_DAYS = env("SPOT_PRICE_RETENTION_DAYS")
ONDEMAND_PRICE_RETENTION_DAYS = env("ONDEMAND_PRICE_RETENTION_DAYS")
# A pool that just produced a termination notice is not chosen for failover for this long.
POOL_COOLDOWN_SECONDS = env("POOL_COOLDOWN_SECONDS")
# A pool whose latest price is older than this is not a failover candidate.
PRICE_FRESHNESS_SECONDS = env("PRICE_FRESHNESS_SECONDS")
# Market data shared between clients (docs/SECURITY.md): a spot quote above this x the real on-demand
# price is dropped; another client's interruption signals count only when this many clients agree.
SPOT_MAX_ONDEMAND_RATIO = env("SPOT_MAX_ONDEMAND_RATIO")
MARKET_EVIDENCE_QUORUM = env("MARKET_EVIDENCE_QUORUM")
# A delivered command with no executed callback or re-register after this long is expired as failed.
COMMAND_DELIVERY_TIMEOUT = env("COMMAND_DELIVERY_TIMEOUT")
# A replica still launching/syncing (or promoting after its switch closed) this long is ended (issue 9).
REPLICA_STUCK_MINUTES = env("REPLICA_STUCK_MINUTES")

# --- Health and metrics (docs/OPERATIONS.md "Health and metrics") ---------------------------------
# Each health check (database, Redis, broker, jobs) and each metrics collector waits at most this long.
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=1.0)
METRICS_COLLECT_TIMEOUT = env.float("METRICS_COLLECT_TIMEOUT", default=2.0)
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; empty: /metrics is off (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Notifications are handed to the broker by a background thread after commit (a request never waits
# for the broker); false: by the committing thread itself, within the broker's timeouts.
NOTIFICATION_PUBLISH_BACKGROUND = env.bool("NOTIFICATION_PUBLISH_BACKGROUND", default=True)
INSTALLED_APPS.append("ops")  # scheduled jobs' bookkeeping and the metric snapshots
MIDDLEWARE.insert(0, "spotbackend.metrics.MetricsMiddleware")  # first: times all of a request
SECURE_REDIRECT_EXEMPT.append(r"^health/(live|ready)$")
