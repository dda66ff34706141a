"""JourneyHub settings: everything that differs between machines comes from the environment.

The defaults serve development only (SQLite and a file-system broker under var/). Production sets
DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and CELERY_BROKER_URL; see README.md.
"""

import json
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from journeyhub.env import (
    database_from_url,
    env_bool,
    env_int,
    env_list,
    env_str,
    push_apps_from_env,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("JOURNEYHUB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite files, the file broker, uploads

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdefghijklmnop"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "journeyhub.apps.JourneyhubAdminConfig",  # django.contrib.admin with our site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "push_notifications",
    "import_export",
    "journeyhub",
    "audiences",
    "notifications",
    "onboarding",
    "campaigns",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "journeyhub.api_errors.api_content_type_middleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "journeyhub.urls"
WSGI_APPLICATION = "journeyhub.wsgi.application"

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

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'journeyhub.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a real worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-journeyhub.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL.startswith("redis://") or CACHE_URL.startswith("rediss://"):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

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
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# Security: strict unless DEBUG. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_NAME.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_str("SECURE_PROXY_SSL_HEADER_NAME"):
    SECURE_PROXY_SSL_HEADER = (env_str("SECURE_PROXY_SSL_HEADER_NAME"), "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # httpx logs every request at INFO: 500 lines per FCM batch.
        "httpx": {"level": "WARNING"},
    },
}

# --- Delivery -----------------------------------------------------------------------------------
# A worker's claim on a delivery batch lasts this long without a write (each recorded slice of
# results and each chunk renews it). Past it, the batch is taken over by the first task that
# asks: the broker's second delivery of the dead worker's task, or the sweeper. A dead worker's
# messages go out again within about this plus BROKER_VISIBILITY_TIMEOUT_SECONDS' margin; a
# provider request must answer well within it (FCM and APNs requests time out after 10 s).
DELIVERY_BATCH_LEASE_SECONDS = env_int("DELIVERY_BATCH_LEASE_SECONDS", 30)
# Queued work this long without running is enqueued again: the broker lost it (a restart of a
# broker that keeps nothing on disk). Running twice is harmless: every piece is claimed. A dead
# worker's work does not wait for this: the broker delivers its tasks again (see above).
DELIVERY_REENQUEUE_AFTER_SECONDS = env_int("DELIVERY_REENQUEUE_AFTER_SECONDS", 600)
# A provider answering only temporary errors is tried again after this, doubling on every
# failed try (or longer if it asks, with Retry-After), at most the maximum.
DELIVERY_OUTAGE_BACKOFF_SECONDS = env_int("DELIVERY_OUTAGE_BACKOFF_SECONDS", 10)
DELIVERY_OUTAGE_BACKOFF_MAX_SECONDS = env_int("DELIVERY_OUTAGE_BACKOFF_MAX_SECONDS", 300)

# --- Celery -----------------------------------------------------------------------------------
# Default: a broker made of files under var/celery, so `make run` needs no service. Any kombu
# URL works: redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
BROKER_VISIBILITY_TIMEOUT_SECONDS = env_int("BROKER_VISIBILITY_TIMEOUT_SECONDS",
                                            DELIVERY_BATCH_LEASE_SECONDS + 15)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _celery_dir = VAR_DIR / "celery"
    for _folder in ("out", "processed", "control"):  # kombu creates none of them itself
        (_celery_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "out"),
        "data_folder_out": str(_celery_dir / "out"),
        "processed_folder": str(_celery_dir / "processed"),
        "store_processed": False,
        # Queue bindings for fanout/direct exchanges; kombu's default is ./control in the cwd.
        "control_folder": str(_celery_dir / "control"),
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://", "sentinel://")):
    # Redis has no acknowledgements: a task a dead worker took stays invisible until this
    # timeout, then goes back to the front of its queue. Short, because every task claims its
    # work in the database: a copy delivered while the first still runs finds it claimed.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_SECONDS,
        "unacked_restore_interval": 5,  # how often workers look for such tasks
        "unacked_restore_throttle": 1,  # ...and do look each time (kombu's default: 1 in 10)
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}  # RabbitMQ gives a dead consumer's messages back at once
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Work split by kind so each can get its own workers: see "Scaling out" in the README. The send
# queue has priorities: a batch taken back from a dead worker, or due again after a retry or a
# provider outage, goes ahead of new batches. RabbitMQ serves the highest number first, Redis
# (kombu's emulation: 0, 3, 6, 9) the lowest; the filesystem broker has none.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name, queue_arguments=arguments)
    for name, arguments in [("default", None), ("fanout", None), ("analytics", None),
                            ("send", {"x-max-priority": 9})]
]
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "sentinel://")):
    DELIVERY_PRIORITY_NEW, DELIVERY_PRIORITY_RESENT = 6, 0
else:
    DELIVERY_PRIORITY_NEW, DELIVERY_PRIORITY_RESENT = 3, 9
CELERY_TASK_ROUTES = {
    "notifications.tasks.send_fan_out": {"queue": "fanout"},
    "notifications.tasks.delivery_batch_send": {"queue": "send"},
    "analytics.tasks.rollups_refresh": {"queue": "analytics"},
}

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["journeyhub.api_json.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "journeyhub.api_schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["journeyhub.api_auth.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env_str("API_KEY_RATE", "6000/min"),
        "customer_token": env_str("CUSTOMER_TOKEN_RATE", "120/min"),
    },
    "EXCEPTION_HANDLER": "journeyhub.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "JourneyHub API",
    "DESCRIPTION": "Customers, events, consent and devices for JourneyHub.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "GET_LIB_DOC_EXCLUDES": "journeyhub.api_schema.lib_doc_excludes",
    # One schema name per choice set that several fields share.
    "ENUM_NAME_OVERRIDES": {
        "LifecycleStageEnum": "audiences.models.Stage",
        "CampaignKindEnum": "campaigns.models.Campaign.Kind",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "StepKindEnum": "campaigns.models.Step.Kind",
        "DeviceKindEnum": "notifications.models.Device.Kind",
        "TemplateKindEnum": "notifications.models.Template.Kind",
        "SendStatusEnum": "notifications.models.Send.Status",
        "DeliveryStatusEnum": "notifications.models.Delivery.Status",
        "SegmentKindEnum": "audiences.models.Segment.Kind",
        "TimeZoneEnum": "audiences.models.TIME_ZONE_CHOICES",
        "EventCreatedStatusEnum": ["created", "duplicate"],
    },
}
# Lifetime of the customer tokens the brand backend mints for its app.
CUSTOMER_TOKEN_MAX_AGE_SECONDS = env_int("CUSTOMER_TOKEN_MAX_AGE_SECONDS", 30 * 24 * 3600)

# --- Push providers ---------------------------------------------------------------------------
# Like EMAIL_BACKEND: the real providers, or notifications.providers.console.ConsoleBackend
# (prints), or notifications.providers.locmem.LocmemBackend (keeps messages in memory; tests).
PUSH_BACKEND = env_str("PUSH_BACKEND", "notifications.providers.real.ProviderBackend")
# Credentials per provider and application id. PUSH_APPS_FILE points at a JSON file of the same
# shape for several apps per platform; the single-app variables below fill "default".
PUSH_APPS = push_apps_from_env()

# Each customer's referral link (``customer.referral_link`` in templates): {code} is replaced by
# their referral code, wherever it stands, e.g. "https://example.com/invite?ref={code}" or
# "https://example.com/r/{code}". The link leads to your site or app, which reports the opening
# (POST /api/v1/me/referrals/opened/) and signs the friend up with referred_by_code.
REFERRAL_LINK = env_str("REFERRAL_LINK", "https://example.com/invite?ref={code}")
if "{code}" not in REFERRAL_LINK or not REFERRAL_LINK.startswith(("https://", "http://")):
    raise ImproperlyConfigured(
        "REFERRAL_LINK must be an http(s) URL holding {code}, e.g. https://example.com/r/{code}.")
# The property of the event that moved a referred customer into the conversion stage (e.g. a
# purchase's "total") recorded as the revenue of referral_converted on their referrer.
REFERRAL_REVENUE_PROPERTY = env_str("REFERRAL_REVENUE_PROPERTY", "total")

# Demo mode (on with DEBUG): demo web devices subscribe to a sink on this server, which decrypts
# what the real Web Push code sends. seed_demo writes the VAPID keys it uses to var/.
DEMO_WEBPUSH_SINK = env_bool("DEMO_WEBPUSH_SINK", DEBUG)
# The demo campaigns seed_demo creates start live (journeys react to their events at once);
# off: they are created as drafts, to launch from their pages when wanted.
DEMO_JOURNEYS = env_bool("DEMO_JOURNEYS", True)
DEMO_BASE_URL = env_str("DEMO_BASE_URL", f"http://127.0.0.1:{env_int('PORT', 8000)}")
DEMO_VAPID_FILE = VAR_DIR / "demo-vapid.json"
if DEMO_WEBPUSH_SINK and "default" not in PUSH_APPS["webpush"] and DEMO_VAPID_FILE.exists():
    PUSH_APPS["webpush"]["default"] = json.loads(DEMO_VAPID_FILE.read_text())
PUSH_NOTIFICATIONS_SETTINGS = {
    # One device row per token: enforced by a unique index, so concurrent registrations of the
    # same token cannot create twins.
    "UNIQUE_REG_ID": True,
}

# --- Import / export --------------------------------------------------------------------------
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = True
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
# The Customers admin previews an import row by row (about 12 ms and several KB of HTML a row):
# a CSV of more rows than this is imported by a worker instead, with a progress page (onboarding).
CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS = env_int("CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS", 10_000)
