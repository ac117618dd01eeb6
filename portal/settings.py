"""One settings module for every mode; production differs only by environment variables.

With nothing set this is the embedded default: SQLite under var/, a file-backed cache, Celery on a
filesystem broker that needs no server, and e-mail written to the local outbox.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from portal import observability

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The key in this file is public (it is in the repository): it may sign sessions, password-reset links
# and notice tokens only where nobody else can reach the portal, i.e. with DEBUG on (`make run`) or
# under pytest (which sets PYTEST_VERSION). Anywhere else a missing SECRET_KEY stops the start.
INSECURE_DEFAULT_SECRET_KEY = "embedded-default-insecure-key-0123456789-change-me-in-production-please"
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEFAULT_SECRET_KEY)
if SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY and not DEBUG and "PYTEST_VERSION" not in os.environ:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set and DEBUG is off: refusing to start with the repository's published "
        "default key, which would let anyone forge sessions, password-reset links and e-mail tokens. "
        "Set SECRET_KEY to a long random secret (e.g. python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))'), or DEBUG=1 for local development."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",  # allauth's second-factor pages
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "django_prometheus",
    "django_structlog",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "django_scim",
    "contracts",
    "notifications",
    "portal",
]

MIDDLEWARE = [
    # First and last: request counts and latencies per view (django-prometheus).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    "portal.middleware.ApiErrorEnvelopeMiddleware",
    # ETag on every non-streamed GET 200, 304 for a matching If-None-Match (docs/scale.md).
    "django.middleware.http.ConditionalGetMiddleware",
    "portal.middleware.AuditOriginMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.TimeZoneMiddleware",
    "portal.scim.auth.ScimTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "axes.middleware.AxesMiddleware",
    # A request id bound to every log line of the request and carried into the tasks it queues.
    "portal.middleware.RequestIdMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "portal.middleware.IdentityPolicyMiddleware",
    "portal.middleware.ApplicationErrorMiddleware",
    "portal.middleware.ControlCharacterMiddleware",
    "portal.middleware.ApiBodyMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
                "csp.context_processors.nonce",
                "portal.context_processors.portal",
            ],
            # {{ value|instant }}: every instant in the reader's time zone, to the minute, zone named.
            "builtins": ["contracts.templatetags.instants"],
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# A persistent connection is checked before a request reuses it: after a database restart the first
# request reconnects instead of failing on the dead connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; a generous timeout waits out writers.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / env.str("TEST_DB_NAME", default="test.sqlite3"))}
else:
    # Django's own default, test_<database>: runs against different databases never share one.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("TEST_DB_NAME", default=f"test_{DATABASES['default']['NAME']}")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Bounded waits on Redis: a Redis that hangs (not only one that refuses) degrades to the database
# within this many seconds instead of holding requests (contracts.cache).
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)
_REDIS_OPTIONS = {"socket_connect_timeout": REDIS_SOCKET_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "contracts.cache.ReusedClientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": _REDIS_OPTIONS,
        }
    }
else:
    CACHES = {"default": env.cache("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")}
CACHES["default"].setdefault("KEY_PREFIX", env.str("CACHE_KEY_PREFIX", default="vcp"))
# Rate-limit counters change on every request: shared Redis in production, in-process otherwise
# (the embedded default serves from one process; a file cache would write a file per request).
CACHES["throttle"] = (
    {
        "BACKEND": "contracts.cache.ReusedClientRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "vcp-throttle",
        "OPTIONS": _REDIS_OPTIONS,
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# django-axes: lock a username+IP pair out after repeated failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# The sign-in form names its field "username" (a username or an e-mail address); allauth hands axes
# either username= or email= credentials, so name the attempt by what was typed.
AXES_USERNAME_CALLABLE = "portal.auth.axes_username"

# django-allauth (docs/identity.md): sign-in flows, per-organisation OpenID Connect, second factors.
# /accounts/login/ stays the portal's own e-mail-first page (portal.views.auth), which routes an
# address at an organisation's verified domain to its provider and runs passwords through allauth's
# flow, so that a second factor is always asked for.
ACCOUNT_ADAPTER = "portal.auth.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "portal.auth.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True  # required by e-mail sign-in; applies to allauth's address book
ACCOUNT_LOGOUT_REDIRECT_URL = LOGOUT_REDIRECT_URL
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
# SCIM 2.0 provisioning at /scim/v2/ (django-scim2; portal/scim/): a per-organisation bearer token,
# the SCIM User is a contracts.ScimUser, the Group a contracts.ScimGroup.
SCIM_SERVICE_PROVIDER = {
    "NETLOC": "localhost",  # unused: locations come from the request (BASE_LOCATION_GETTER)
    "BASE_LOCATION_GETTER": "portal.scim.auth.base_location",
    "USER_MODEL_GETTER": "portal.scim.auth.scim_user_model",
    "USER_ADAPTER": "portal.scim.adapters.ScimUserAdapter",
    "GROUP_MODEL": "contracts.models.ScimGroup",
    "GROUP_ADAPTER": "portal.scim.adapters.ScimGroupAdapter",
    "USER_FILTER_PARSER": "portal.scim.auth.ScimUserFilterQuery",
    "GROUP_FILTER_PARSER": "portal.scim.auth.ScimGroupFilterQuery",
    "GET_EXTRA_MODEL_FILTER_KWARGS_GETTER": "portal.scim.auth.org_filter_kwargs_getter",
    "GET_IS_AUTHENTICATED_PREDICATE": "portal.scim.auth.is_scim_principal",
    "SERVICE_PROVIDER_CONFIG_MODEL": "portal.scim.auth.ServiceProviderConfig",
    "SCHEMAS_GETTER": "portal.scim.auth.schemas_getter",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "The organisation's SCIM token: Authorization: Bearer <token>",
            "primary": True,
        }
    ],
    "WWW_AUTHENTICATE_HEADER": 'Bearer realm="scim"',
    "EXPOSE_SCIM_EXCEPTIONS": False,
}

# Failed sign-ins are counted and locked out by django-axes (above), not twice.
ACCOUNT_RATE_LIMITS = {"login_failed": None}
ACCOUNT_SESSION_REMEMBER = True  # as before allauth: the session outlives the browser (2 weeks)
SOCIALACCOUNT_AUTO_SIGNUP = True  # first SSO sign-in creates the account, no form
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True  # an existing account with the (domain-verified) address
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True}}
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Version Contract Portal")
# fido2 checks the browser's origin against https://<rp id>; plain-HTTP demos and tests on
# http://localhost need this. Never in production.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env.bool("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", default=DEBUG)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# Ed25519 signing keys (contracts.signing): one folder per purpose. Back it up with the database:
# without it, checkpoints and bundles signed so far can no longer be verified (docs/operations.md).
SIGNING_KEYS_DIR = Path(env.str("SIGNING_KEYS_DIR", default=str(VAR_DIR / "keys")))

# E-mail: the embedded default writes to the local outbox (readable at /outbox/ when DEBUG is on).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="notifications.mail.OutboxEmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Version Contract Portal <notices@portal.local>")

# Security: strict in production; the embedded default serves plain HTTP on loopback.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_PROXY", default=False) else None
)
# How many reverse proxies append to X-Forwarded-For in front of the app: the ledger records the
# address the outermost of them saw (contracts.auth.client_ip). 0: REMOTE_ADDR.
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Permissions-Policy (portal.middleware.SecurityHeadersMiddleware): no page needs a powerful feature,
# except passkeys (WebAuthn get/create), allowed for the portal's own origin only (docs/identity.md).
PERMISSIONS_POLICY = env.str(
    "PERMISSIONS_POLICY",
    default=(
        "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), "
        "fullscreen=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), "
        "payment=(), publickey-credentials-get=(self), publickey-credentials-create=(self), "
        "screen-wake-lock=(), serial=(), usb=(), "
        "xr-spatial-tracking=(), browsing-topics=()"
    ),
)
# Password reset requests: at most this many per address and per client address in the window.
PASSWORD_RESET_LIMIT_PER_EMAIL = env.int("PASSWORD_RESET_LIMIT_PER_EMAIL", default=3)
PASSWORD_RESET_LIMIT_PER_CLIENT = env.int("PASSWORD_RESET_LIMIT_PER_CLIENT", default=10)
PASSWORD_RESET_WINDOW_SECONDS = env.int("PASSWORD_RESET_WINDOW_SECONDS", default=3600)
# API request bodies (contracts.http.BoundedJSONParser): bigger or deeper JSON is refused with a 400.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=2 * 1024 * 1024)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)

# Content-Security-Policy (django-csp 4): no inline or eval'd script anywhere; htmx runs with
# its inline-style injection and eval switched off (see templates/_base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "contracts.tenancy.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["contracts.tenancy.auth.IsOrganizationMember"],
    "DEFAULT_THROTTLE_CLASSES": ["contracts.tenancy.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_KEY_RATE", default="6000/min")},
    "EXCEPTION_HANDLER": "portal.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["contracts.http.BoundedJSONParser"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Version Contract Portal API",
    "DESCRIPTION": "Pinned model snapshots, migrations and the consent ledger of one organisation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status": name each choice set so the schema's enums stay readable.
    "ENUM_NAME_OVERRIDES": {
        "BugStatusEnum": "contracts.models.BugStatus",
        "SnapshotStatusEnum": "contracts.models.SnapshotStatus",
        "ExportStatusEnum": "contracts.models.ExportStatus",
        "MigrationStateEnum": "contracts.models.MigrationState",
    },
}

# Celery: Redis in production, a filesystem broker (no server) in the embedded default.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue = VAR_DIR / "celery" / "queue"
    _queue.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery" / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task and every retry countdown (see notifications.tasks).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Consent ledger exports (contracts/ledger/): built PDF/bundle files are kept this long, then expired
# by the hourly beat task; checkpoints are signed once a day.
EXPORT_RETENTION_HOURS = env.int("EXPORT_RETENTION_HOURS", default=72)

# Notifications (notifications/): the outbox is planned by beat every few minutes; due dates live in
# the database. Send task time limit (120 s) < claim lease < visibility timeout; retry countdowns are
# capped below the visibility timeout (asserted in tests/notifications/test_tasks.py).
NOTICE_LEASE_SECONDS = env.int("NOTICE_LEASE_SECONDS", default=300)
# Notices claimed, sent over one SMTP connection and recorded together by one task.
NOTICE_BATCH_SIZE = env.int("NOTICE_BATCH_SIZE", default=200)
NOTICE_CATCH_UP_DAYS = env.int("NOTICE_CATCH_UP_DAYS", default=30)
# Signed links in notice e-mails expire: acknowledgement links after ACK_TOKEN_MAX_AGE_DAYS,
# unsubscribe links (RFC 8058, kept working for a long while) after UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS.
ACK_TOKEN_MAX_AGE_DAYS = env.int("ACK_TOKEN_MAX_AGE_DAYS", default=60)
UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS = env.int("UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS", default=180)
NOTICE_MAX_ATTEMPTS = env.int("NOTICE_MAX_ATTEMPTS", default=8)
NOTICE_RETRY_BASE_SECONDS = env.int("NOTICE_RETRY_BASE_SECONDS", default=30)
NOTICE_RETRY_MAX_SECONDS = env.int("NOTICE_RETRY_MAX_SECONDS", default=1800)
NOTICE_TEST_BLOCK_AFTER_CLAIM_SECONDS = env.float("NOTICE_TEST_BLOCK_AFTER_CLAIM_SECONDS", default=0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_TIMEOUT_SECONDS = env.int("WEBHOOK_TIMEOUT_SECONDS", default=10)
# Kept-alive webhook connections per worker process (0 turns reuse off) and their idle lifetime.
WEBHOOK_POOL_MAX_IDLE = env.int("WEBHOOK_POOL_MAX_IDLE", default=32)
WEBHOOK_POOL_IDLE_SECONDS = env.float("WEBHOOK_POOL_IDLE_SECONDS", default=30.0)
# The one switch that lets webhooks reach non-public addresses (a receiver on loopback in the demo and
# in tests). Off: only globally routable addresses are delivered to (notifications/webhooks.py).
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
# The embedded demo's webhook receiver (make run starts it): with DEBUG on, webhooks may reach
# 127.0.0.1 on this one port (any other private address still needs WEBHOOKS_ALLOW_PRIVATE).
DEMO_WEBHOOK_PORT = env.int("DEMO_WEBHOOK_PORT", default=8002)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# Task modules autodiscovery does not find (it looks for <app>/tasks.py only), and the one beat's
# schedule. Due dates live in the database; beat only wakes the planners up.
CELERY_IMPORTS = [
    "contracts.consent.tasks",
    "contracts.ledger.tasks",
    "contracts.diffs.tasks",
    "contracts.bugs.tasks",
    "contracts.billing.tasks",
    "contracts.gateway.tasks",
    "contracts.renewal.tasks",
]
CELERY_BEAT_SCHEDULE = {
    "migrations-apply-scheduled": {"task": "contracts.consent.apply_scheduled", "schedule": 300},
    "migrations-force-at-retirement": {"task": "contracts.consent.force_at_retirement", "schedule": 300},
    "ledger-checkpoints-daily": {"task": "contracts.ledger.checkpoints_daily", "schedule": 24 * 3600},
    "exports-expire-hourly": {"task": "contracts.ledger.exports_expire", "schedule": 3600},
    "notices-plan": {"task": "notifications.tasks.plan_notices", "schedule": 300},
    "notices-dispatch": {"task": "notifications.tasks.dispatch_notices", "schedule": 60},
    "ledger-verify-daily": {"task": "contracts.ledger.verify_daily", "schedule": 24 * 3600},
    "pin-map-grants-expire": {"task": "contracts.gateway.grants_expire", "schedule": 60},
    "pin-map-changes-prune": {"task": "contracts.gateway.changes_prune", "schedule": 6 * 3600},
    "eval-runs-release-expired": {"task": "contracts.renewal.eval_runs_release_expired", "schedule": 60},
    "audit-packs-expire-hourly": {"task": "contracts.renewal.audit_packs_expire", "schedule": 3600},
}

# Renewal and audit (contracts/renewal/, docs/renewal-and-audit.md). An eval runner holds a claimed run
# for EVAL_RUN_LEASE_SECONDS (each progress report extends it); a lease that runs out puts the run back
# in the queue, up to EVAL_RUN_MAX_ATTEMPTS claims, then the run fails and the customer is told.
EVAL_RUNNER_KEY_PREFIX = "vcr_"
EVAL_RUN_LEASE_SECONDS = env.int("EVAL_RUN_LEASE_SECONDS", default=600)
EVAL_RUN_MAX_ATTEMPTS = env.int("EVAL_RUN_MAX_ATTEMPTS", default=3)
# PAdES signatures on issued PDFs (contracts/pdfsign.py): empty = a self-signed certificate generated
# on first use in SIGNING_KEYS_DIR/pdf/; in production a CA-issued certificate and its key (PEM).
PDF_SIGNING_CERT = env.str("PDF_SIGNING_CERT", default="")
PDF_SIGNING_KEY = env.str("PDF_SIGNING_KEY", default="")
PDF_SIGNING_KEY_PASSWORD = env.str("PDF_SIGNING_KEY_PASSWORD", default="")
PDF_SIGNING_CHAIN = env.list("PDF_SIGNING_CHAIN", default=[])
PDF_SIGNING_NAME = env.str("PDF_SIGNING_NAME", default="Version Contract Portal")
PDF_SIGNING_LOCATION = env.str("PDF_SIGNING_LOCATION", default="")

# Organisation API keys: the visible prefix is stored in clear, the secret only as sha256.
API_KEY_PREFIX = "vcp_"
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=300)
API_KEY_TOUCH_SECONDS = env.int("API_KEY_TOUCH_SECONDS", default=60)
RESOLVE_CACHE_SECONDS = env.int("RESOLVE_CACHE_SECONDS", default=300)

# The data plane (contracts/gateway/, docs/data-plane.md). Gateway keys start with their own prefix, so
# one Authorization header tells a gateway from an organisation. The pin map's change log is kept this
# many days (a gateway further behind gets 410 and fetches the full map); the full map is cached per
# revision. Long-polls are woken by PostgreSQL LISTEN/NOTIFY, Redis pub/sub, or (embedded default)
# the writing process itself, and re-read the revision every PIN_MAP_POLL_SECONDS whatever the mode.
GATEWAY_KEY_PREFIX = "vcpgw_"
PIN_MAP_CHANGE_RETENTION_DAYS = env.int("PIN_MAP_CHANGE_RETENTION_DAYS", default=7)
PIN_MAP_CACHE_SECONDS = env.int("PIN_MAP_CACHE_SECONDS", default=3600)
PIN_MAP_REDIS_URL = env.str("PIN_MAP_REDIS_URL", default=REDIS_URL)
PIN_MAP_WAKEUP = env.str(
    "PIN_MAP_WAKEUP",
    default="postgres"
    if DATABASES["default"]["ENGINE"].endswith("postgresql")
    else ("redis" if PIN_MAP_REDIS_URL else "local"),
)
PIN_MAP_POLL_SECONDS = env.float("PIN_MAP_POLL_SECONDS", default=1.0 if PIN_MAP_WAKEUP == "local" else 10.0)

# Stripe billing (contracts/billing.py is the one seam). No secret key = billing not configured.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # empty: Stripe's own https://api.stripe.com
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)  # the SDK's own retries
# price id -> tier, for tier prices that carry no `tier` metadata: price_123=enterprise,price_456=standard
STRIPE_PRICE_TIERS = env.dict("STRIPE_PRICE_TIERS", default={})
# Price text shown for an extended-support price id when Stripe is not asked (price_x=EUR 120.00 per month).
EXTENDED_SUPPORT_PRICES = env.dict(
    "EXTENDED_SUPPORT_PRICES",
    default={
        "price_demo_extended_support_chat_2025_06_01": "EUR 400.00 per month (demo price)",
        "price_demo_extended_support_chat_2024_11_15": "EUR 250.00 per month (demo price)",
    },
)
STRIPE_DEFAULT_TIER = env.str("STRIPE_DEFAULT_TIER", default="standard")
# Origins the billing page may send a form to (Checkout and the customer portal), for CSP form-action.
STRIPE_REDIRECT_ORIGINS = env.list(
    "STRIPE_REDIRECT_ORIGINS", default=["https://checkout.stripe.com", "https://billing.stripe.com"]
)

# Operations (docs/operations.md): health, metrics, logs, error reporting, ledger alerts.
# /metrics: with METRICS_TOKEN set, only `Authorization: Bearer <token>` is answered (403 otherwise);
# without it, only loopback callers (the embedded default). /readyz answers 503 when one of the
# READYZ_REQUIRED checks fails; the others are reported ("degraded") but do not take the process out
# of service: without Redis the portal serves from the database, and a load balancer that dropped
# every web process for a cache outage would turn a degraded portal into no portal.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
READYZ_REQUIRED = env.list("READYZ_REQUIRED", default=["database"])
READYZ_NOTICE_MAX_AGE_SECONDS = env.int("READYZ_NOTICE_MAX_AGE_SECONDS", default=3600)
# The data plane (issue #14): a gateway seen this recently counts as connected in /metrics.
GATEWAY_CONNECTED_SECONDS = env.int("GATEWAY_CONNECTED_SECONDS", default=300)
# Who is mailed when a ledger stops verifying, besides active staff users with an address.
OPS_ALERT_EMAILS = env.list("OPS_ALERT_EMAILS", default=[])

# Logs: JSON lines (production) or readable console lines (DEBUG); every line of a request carries
# its request_id (X-Request-ID when the caller or proxy sends one), and so does every line of the
# Celery tasks the request queued (django-structlog).
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
LOGGING = observability.logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
observability.structlog_configure()
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# The id portal.middleware.RequestIdMiddleware settled on (the proxy's X-Request-ID when sane), so
# the proxy's access log and ours name the same request.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Sentry: errors of web and worker processes when SENTRY_DSN is set (nothing is sent otherwise).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    observability.sentry_init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )
