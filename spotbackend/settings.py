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
    ALLOWED_HOSTS=(list, ["*"]),
    TERMINATION_REPLICA_AUTO_CREATE=(bool, True),
    TERMINATION_NOTIFICATION_WEBHOOK=(str, ""),
    AUTO_CLEANUP_ENABLED=(bool, True),
    CLEANUP_SNAPSHOTS_DAYS=(int, 7),
    CLEANUP_AMIS_DAYS=(int, 30),
    SAVINGS_CALCULATION_HOUR=(int, 0),
    AGENT_HEARTBEAT_TIMEOUT=(int, 300),
    STALE_AGENTS_INTERVAL_HOURS=(int, 6),
    POOL_COOLDOWN_SECONDS=(int, 600),
    PRICE_FRESHNESS_SECONDS=(int, 3600),
    COMMAND_DELIVERY_TIMEOUT=(int, 1800),
    REPLICA_STUCK_MINUTES=(int, 15),
    CONN_MAX_AGE=(int, 60),
)
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))

DEBUG = env("DEBUG")
# Development default only; production must set SECRET_KEY (README).
SECRET_KEY = env("SECRET_KEY", default="dev-insecure-spotbackend-key-change-me")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "clients",
    "agents",
    "savings",
    "cleanup",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Only the admin needs these; /api/ and /health run without them (spotbackend/handlers.py).
ADMIN_ONLY_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "spotbackend.urls"
# The agents and the installers never follow a redirect to a slashed URL.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES', time_zone='+00:00'",
            "isolation_level": "read committed",
        }
    )
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

# --- Redis: Celery broker and cache -------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
# Redis only accelerates: every call has this socket timeout (seconds), and after a failure a process
# leaves Redis alone for REDIS_RETRY_SECONDS and reads the database instead (docs/PERFORMANCE.md).
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.25)
REDIS_RETRY_SECONDS = env.float("REDIS_RETRY_SECONDS", default=5.0)
# The agent hot path's caches (token -> client, agent config, "no pending command"): REDIS_URL, or
# none (every answer from the database, tokens cached AUTH_EPOCH_CHECK_SECONDS at most).
HOTCACHE_REDIS_URL = env("HOTCACHE_REDIS_URL", default=REDIS_URL)
# How often each process checks whether any client changed (token rotated, deactivated): a rotated
# token stops working everywhere within this many seconds.
AUTH_EPOCH_CHECK_SECONDS = env.float("AUTH_EPOCH_CHECK_SECONDS", default=2.0)
AUTH_CACHE_TTL = env.int("AUTH_CACHE_TTL", default=300)
# Upper bounds on staleness should an invalidation be lost while Redis was unreachable.
AGENT_CONFIG_CACHE_TTL = env.int("AGENT_CONFIG_CACHE_TTL", default=600)
AGENT_NO_COMMAND_CACHE_TTL = env.int("AGENT_NO_COMMAND_CACHE_TTL", default=300)
# A heartbeat that changes nothing is kept in Redis and written to the database in bulk every
# HEARTBEAT_FLUSH_SECONDS (last_heartbeat_at is accurate to that); a web process flushes itself when
# the oldest pending heartbeat is older than HEARTBEAT_FLUSH_OVERDUE_SECONDS (Celery not running).
HEARTBEAT_WRITE_BEHIND = env.bool("HEARTBEAT_WRITE_BEHIND", default=True)
HEARTBEAT_FLUSH_SECONDS = env.int("HEARTBEAT_FLUSH_SECONDS", default=5)
HEARTBEAT_FLUSH_OVERDUE_SECONDS = env.int("HEARTBEAT_FLUSH_OVERDUE_SECONDS", default=30)
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
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["spotbackend.authentication.ClientTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["spotbackend.authentication.IsClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "spotbackend.exceptions.json_exception_handler",
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"token_validate": env("TOKEN_VALIDATE_RATE", default="30/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "spotbackend API",
    "DESCRIPTION": "Central server of the spot-instance optimizer: agents, dashboard and installers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# --- Product settings (ARCHITECTURE.md §7) ----------------------------------------------------
TERMINATION_REPLICA_AUTO_CREATE = env("TERMINATION_REPLICA_AUTO_CREATE")
TERMINATION_NOTIFICATION_WEBHOOK = env("TERMINATION_NOTIFICATION_WEBHOOK")
AUTO_CLEANUP_ENABLED = env("AUTO_CLEANUP_ENABLED")
CLEANUP_SNAPSHOTS_DAYS = env("CLEANUP_SNAPSHOTS_DAYS")
CLEANUP_AMIS_DAYS = env("CLEANUP_AMIS_DAYS")
SAVINGS_CALCULATION_HOUR = env("SAVINGS_CALCULATION_HOUR")
AGENT_HEARTBEAT_TIMEOUT = env("AGENT_HEARTBEAT_TIMEOUT")
STALE_AGENTS_INTERVAL_HOURS = env("STALE_AGENTS_INTERVAL_HOURS")
# A pool that just produced a termination notice is not chosen for failover for this long.
POOL_COOLDOWN_SECONDS = env("POOL_COOLDOWN_SECONDS")
# A pool whose latest price is older than this is not a failover candidate.
PRICE_FRESHNESS_SECONDS = env("PRICE_FRESHNESS_SECONDS")
# A delivered command with no executed callback or re-register after this long is expired as failed.
COMMAND_DELIVERY_TIMEOUT = env("COMMAND_DELIVERY_TIMEOUT")
# A replica still launching/syncing (or promoting after its switch closed) this long is ended (issue 9).
REPLICA_STUCK_MINUTES = env("REPLICA_STUCK_MINUTES")
