"""Django's settings, from environment variables, with defaults that run on one machine.

fedmock's own settings (IDP_BASE_URL, IDP_ENTITY_ID, IDP_CERTS_DIR, the key refresh
interval, the metadata cache duration, the key-expiry warning, the audit retention)
are listed with their defaults and meanings in idp/conf.py; each can be set by the
environment variable of the same name.

DATABASE_URL   any dj-database-url URL (default SQLite in the project folder, mode 0600);
               postgres://USER:PASSWORD@HOST:PORT/NAME for several hosts (psycopg 3)
SECRET_KEY     Django secret; without it one is generated once into .secret_key
IDP_KEY_ENCRYPTION_KEY  encrypts signing keys in the database; default: .key_encryption_key
DEBUG          "1" for Django's debug pages (never in a shared deployment)
"""

import base64
import datetime
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONCE, NONE, SELF

from idp import conf

BASE_DIR = Path(__file__).resolve().parent.parent


def _development_secret(name: str, generate) -> str:
    # Persisted so that every gunicorn worker and every restart share one key;
    # a per-process random key would log users out between workers.
    path = BASE_DIR / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = generate()
        # Written whole under a private name, then linked into place: a process starting at
        # the same moment finds no file or the whole key, never an empty one.
        temporary = path.with_name(f".{name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process wrote it first: use theirs
            return path.read_text().strip()
        finally:
            os.unlink(temporary)
        return key


SECRET_KEY = os.environ.get("SECRET_KEY") or _development_secret(
    ".secret_key", lambda: secrets.token_urlsafe(50)
)
# Encrypts the signing keys' private halves in the database (idp/keys.py). Every host of one
# database needs the same value, as with SECRET_KEY; one host alone may use the generated
# file. A Fernet key (32 bytes, url-safe base64); several, comma-separated, decrypt and the
# first encrypts, so that a KEK can be replaced without a moment when no key decrypts.
IDP_KEY_ENCRYPTION_KEY = os.environ.get("IDP_KEY_ENCRYPTION_KEY") or _development_secret(
    ".key_encryption_key", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()
)
DEBUG = os.environ.get("DEBUG") == "1"

_idp = conf.from_environment(os.environ)
globals().update(_idp)  # every IDP_* setting, as idp/conf.py lists them

ALLOWED_HOSTS = [
    host
    for host in os.environ.get("ALLOWED_HOSTS", "").split(",")
    + [
        urlsplit(_idp["IDP_BASE_URL"]).hostname or "",
        "127.0.0.1",
        "localhost",
    ]
    if host
]
CSRF_TRUSTED_ORIGINS = [_idp["IDP_BASE_URL"]]
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
    "axes",
    # TOTP second factor (idp/mfa.py): devices with drift, throttling and one-time use.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "idp.api",
    "idp.sts",
    # Before idp.oidc, whose admin replaces DOT's.
    "oauth2_provider",
    "idp.oidc",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "idp.sessions.RevokedSessionMiddleware",
    "idp.picker.PickedSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout into our error page.
    "axes.middleware.AxesMiddleware",
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
                "csp.context_processors.nonce",
                "idp.picker.login_mode",
            ],
        },
    },
]

# Persistent connections (10 minutes) in both engines: a warm sign-on runs no SQL, and the
# watcher's poll and the audit flush reuse their connection. Health checks are lazy (one
# check when a request first uses a reused connection), so a restarted PostgreSQL costs
# one failed check, not a 500.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=600,
        conn_health_checks=True,
    )
}
# The test suite's database server (scripts/with-postgres, `make test-postgres`; pytest-django
# creates test_<name> on it). Read under pytest only, so that a TEST_DATABASE_URL left in a
# shell never moves a server or a command run by hand off DATABASE_URL. It must be chosen
# here: Django makes the connection while it builds the models.
if "pytest" in sys.modules and os.environ.get("TEST_DATABASE_URL"):
    DATABASES["default"] = dj_database_url.parse(
        os.environ["TEST_DATABASE_URL"], conn_max_age=600, conn_health_checks=True
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets gunicorn workers read while one writes; IMMEDIATE avoids
    # "database is locked" upgrades from read to write transactions.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    conf.keep_private(Path(DATABASES["default"]["NAME"]))

AUTH_USER_MODEL = "users.User"
# The throttle (django-axes) first: it refuses a locked-out login before the password is
# checked. It acts on login attempts only; the signed-in user comes from
# CachedModelBackend.get_user, so the warm sign-on path gains no query.
AUTHENTICATION_BACKENDS = ["idp.auth.LoginThrottle", "idp.auth.CachedModelBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Demo passwords equal the user names; no validators, since this is a test IdP.
AUTH_PASSWORD_VALIDATORS: list[dict] = []

# Sessions live in a signed cookie: no session query or write on the sign-on path.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_NAME = "fedmock_session"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = conf.cookies_secure(_idp["IDP_BASE_URL"])

# Login throttling (django-axes): five wrong passwords for one user name from one address
# lock that pair out for 15 minutes; a successful login clears the count. Locking by the
# pair keeps a typo-prone tester from locking out everyone behind the same address.
OTP_TOTP_ISSUER = "fedmock"  # the issuer an authenticator app shows (otpauth:// URI)
# django-otp's own device admin shows no secret and no QR code: only the user sees theirs,
# at enrolment (/accounts/mfa/), as the API never returns one.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = datetime.timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "idp.auth.lockout"
AXES_DISABLE_ACCESS_LOG = True  # sign-ons are in our audit trail; axes keeps the failures

# Content-Security-Policy (django-csp) on every response. No inline script anywhere: the
# POST form submits itself from a static file. The nonce is for the few inline <style>
# blocks; it enters the header only on pages that use it. There is no form-action: the
# POST form's target is each service provider's ACS, on any host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
    }
}

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

# The REST API (idp/api): bearer tokens of staff users, the admin's model permissions,
# JSON errors in the house shape, and an OpenAPI document generated from the code.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["idp.api.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["idp.api.permissions.StaffModelPermissions"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "idp.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "fedmock API",
    "DESCRIPTION": "Drive fedmock from code: directory, sign-ons, checks, fault scenarios.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Swagger UI would fetch a badge from validator.swagger.io, which the CSP refuses.
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None},
    "ENUM_NAME_OVERRIDES": {"SeverityEnum": "idp.api.errors.SEVERITIES"},
}

# The OIDC issuer at /oidc (idp/oidc): django-oauth-toolkit's authorization-code (PKCE
# required) and client-credentials grants, with our client model and validator; the issuer,
# its keys and the ID-token claims are fedmock's (idp/oidc/validator.py).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oidc.Client"
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "PKCE_REQUIRED": True,
    "SCOPES": {
        "openid": "an ID token",
        "profile": "the user's name",
        "email": "the user's e-mail address",
        "groups": "the user's groups",
    },
    "DEFAULT_SCOPES": ["openid"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "ID_TOKEN_EXPIRE_SECONDS": 3600,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "OAUTH2_VALIDATOR_CLASS": "idp.oidc.validator.Validator",
    # Access tokens are JWTs signed by the active JWT key (so a client-credentials token
    # works with AssumeRoleWithWebIdentity); refresh tokens stay opaque random strings.
    "ACCESS_TOKEN_GENERATOR": "idp.oidc.validator.access_token",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    # RFC 9700 now rather than at DOT 4.0: no implicit or password grant, no plain PKCE,
    # no access token in a query string, and only the tokens' SHA-256 digests are stored.
    # (Its authorization-response iss, RFC 9207, is left off: DOT takes that issuer from
    # a fixed setting, and ours follows IDP_BASE_URL.)
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
}
