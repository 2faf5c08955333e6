"""Settings for spotbackend, read once from the environment (12-factor).

Every variable is documented in README.md and .env.example. With nothing set, the server runs on
embedded defaults: a SQLite file under ./var and a filesystem Celery broker (no external service).
"""
from pathlib import Path

import environ

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
    "spotbackend.admin_views.SpotAdminConfig",  # django.contrib.admin with the fleet on its index
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
    "spotbackend.middleware.DatabaseUnavailableMiddleware",
    "spotbackend.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (the admin's CSS and JS) from the app itself, in `make run`, Docker and production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Only the admin needs these; /api/ and /health run without them (spotbackend/handlers.py). WhiteNoise
# serves /static/ (the admin's and the API docs pages' files), which never starts with /api/.
ADMIN_ONLY_MIDDLEWARE = [
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
# A ping before every request costs the hot path ~7 % (docs/PERFORMANCE.md); off by default.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
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
REDIS_URL = env("REDIS_URL", default="")
# Redis only accelerates: every call has this socket timeout (seconds), and after a failure a process
# leaves Redis alone for REDIS_RETRY_SECONDS and reads the database instead (docs/PERFORMANCE.md).
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.25)
REDIS_RETRY_SECONDS = env.float("REDIS_RETRY_SECONDS", default=5.0)
# The agent hot path's caches (token -> client, agent config, "no pending command"): REDIS_URL, or
# none (every answer from the database).
HOTCACHE_REDIS_URL = env("HOTCACHE_REDIS_URL", default=REDIS_URL)
AUTH_CACHE_TTL = env.int("AUTH_CACHE_TTL", default=300)
# The per-process layer in front of Redis (token -> client, agent config, "no pending command",
# heartbeat signatures): a change (a rotated token too) is seen by every process within this many seconds.
HOT_LOCAL_CHECK_SECONDS = env.float("HOT_LOCAL_CHECK_SECONDS", default=1.0)
# A web process hands its buffered heartbeats to Redis in one round trip at most this often.
HEARTBEAT_BUFFER_SECONDS = env.float("HEARTBEAT_BUFFER_SECONDS", default=1.0)
# Upper bounds on staleness should an invalidation be lost while Redis was unreachable.
AGENT_CONFIG_CACHE_TTL = env.int("AGENT_CONFIG_CACHE_TTL", default=600)
AGENT_OWNER_CACHE_TTL = env.int("AGENT_OWNER_CACHE_TTL", default=7 * 86400)  # owners never change
AGENT_NO_COMMAND_CACHE_TTL = env.int("AGENT_NO_COMMAND_CACHE_TTL", default=300)
# A heartbeat that changes nothing is kept in Redis and written to the database in bulk every
# HEARTBEAT_FLUSH_SECONDS (last_heartbeat_at is accurate to that); a web process flushes itself when
# the oldest pending heartbeat is older than HEARTBEAT_FLUSH_OVERDUE_SECONDS (Celery not running).
HEARTBEAT_WRITE_BEHIND = env.bool("HEARTBEAT_WRITE_BEHIND", default=True)
HEARTBEAT_FLUSH_SECONDS = env.int("HEARTBEAT_FLUSH_SECONDS", default=5)
HEARTBEAT_FLUSH_OVERDUE_SECONDS = env.int("HEARTBEAT_FLUSH_OVERDUE_SECONDS", default=30)
# The periodic flush paces its statements (100 agents each) over about this many seconds (at most half
# of HEARTBEAT_FLUSH_SECONDS; 0: all at once), so that the web processes on the same machine never
# queue behind a burst of it (docs/PERFORMANCE.md, "Background work beside the web").
HEARTBEAT_FLUSH_SPREAD_SECONDS = env.float("HEARTBEAT_FLUSH_SPREAD_SECONDS", default=1.0)
# Pricing reports are queued in Redis and written by the same task in bulk (samples and latest prices
# visible within HEARTBEAT_FLUSH_SECONDS; agents/services/price_writes.py). Off, or without Redis: at once.
PRICE_WRITE_BEHIND = env.bool("PRICE_WRITE_BEHIND", default=True)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CACHES = {
        "default": {
            "BACKEND": "spotbackend.cache.FailSoftRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "health_check_interval": 0,
            },
        }
    }
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
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
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
    "DEFAULT_AUTHENTICATION_CLASSES": ["spotbackend.throttling.ThrottledClientTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["spotbackend.authentication.IsClient"],
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# --- Product settings (docs/ARCHITECTURE.md §7) ----------------------------------------------------
TERMINATION_REPLICA_AUTO_CREATE = env("TERMINATION_REPLICA_AUTO_CREATE")
TERMINATION_NOTIFICATION_WEBHOOK = env("TERMINATION_NOTIFICATION_WEBHOOK")
# A notification is retried with backoff (5 s doubling, at most 1 h apart) for this long, then failed.
NOTIFICATION_RETRY_HOURS = env("NOTIFICATION_RETRY_HOURS")
NOTIFICATION_WEBHOOK_TIMEOUT = 5
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
