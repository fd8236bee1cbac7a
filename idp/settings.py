"""Settings from environment variables, with defaults that run on one machine.

IDP_BASE_URL   public URL of the IdP (default http://127.0.0.1:8000)
IDP_ENTITY_ID  entity ID (default {IDP_BASE_URL}/saml/metadata/)
IDP_CERTS_DIR  where signing keys live (default ./certs)
DATABASE_URL   any dj-database-url URL (default SQLite in the project folder)
SECRET_KEY     Django secret; without it one is generated once into .secret_key
DEBUG          "1" for Django's debug pages (never in a shared deployment)
"""

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _development_secret_key() -> str:
    # Persisted so that every gunicorn worker and every restart share one key;
    # a per-process random key would log users out between workers.
    path = BASE_DIR / ".secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


SECRET_KEY = os.environ.get("SECRET_KEY") or _development_secret_key()
DEBUG = os.environ.get("DEBUG") == "1"

IDP_BASE_URL = os.environ.get("IDP_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
IDP_ENTITY_ID = os.environ.get("IDP_ENTITY_ID", "")  # empty: {IDP_BASE_URL}/saml/metadata/
IDP_CERTS_DIR = Path(os.environ.get("IDP_CERTS_DIR", BASE_DIR / "certs"))
IDP_KEY_REFRESH_SECONDS = 1.0
# How long an SP may cache the metadata (an xs:duration); short, since keys rotate.
IDP_METADATA_CACHE_DURATION = os.environ.get("IDP_METADATA_CACHE_DURATION", "PT1H")
# Days before expiry at which `manage.py check` warns about the active key.
IDP_KEY_EXPIRY_WARNING_DAYS = 30

ALLOWED_HOSTS = [
    host
    for host in os.environ.get("ALLOWED_HOSTS", "").split(",")
    + [
        urlsplit(IDP_BASE_URL).hostname or "",
        "127.0.0.1",
        "localhost",
    ]
    if host
]
CSRF_TRUSTED_ORIGINS = [IDP_BASE_URL]
CSRF_FAILURE_VIEW = "idp.errors.csrf_failure"

INSTALLED_APPS = [
    "users",
    "idp",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "idp.urls"
WSGI_APPLICATION = "idp.wsgi.application"

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
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=600
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets gunicorn workers read while one writes; IMMEDIATE avoids
    # "database is locked" upgrades from read to write transactions.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = ["idp.auth.CachedModelBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Demo passwords equal the user names; no validators, since this is a test IdP.
AUTH_PASSWORD_VALIDATORS: list[dict] = []

# Sessions live in a signed cookie: no session query or write on the sign-on path.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_NAME = "fedmock_session"
SESSION_COOKIE_SAMESITE = "Lax"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"fedmock": {"handlers": ["console"], "level": "INFO"}},
}
