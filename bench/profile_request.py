"""Where one warm IdP-initiated sign-on spends its time, through the whole WSGI application.

    .venv/bin/python bench/profile_request.py [--requests 2000] [--top 40]

On a fresh SQLite database in a temporary directory (bootstrapped as `make run` does,
the audit batched as under gunicorn), alice's signed-in browser asks for
/saml/init/?sp=urn:amazon:webservices&role=... through idp.wsgi.application, the object
gunicorn calls. It prints the median time per request, then cProfile's cumulative
time per request of the parts that matter (signatures, middleware, template, audit,
session, ...), in milliseconds. gunicorn's own work (HTTP parsing, the access log) is
outside this process's WSGI call; the access log line is timed separately at the end.
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROLE = "arn:aws:iam::111122223333:role/Admin"
# (label, file fragment, function name): the parts quoted in the profile, cumulative.
PARTS = [
    ("whole WSGI call", "django/core/handlers/wsgi.py", "__call__"),
    ("view idp_initiated (incl. SSO)", "idp/views.py", "idp_initiated"),
    ("  sso.idp_initiated", "idp/sso.py", "idp_initiated"),
    ("    claims.release", "idp/claims.py", "release"),
    ("    responses.build", "idp/saml/responses.py", "build"),
    ("    signing.sign_with", "idp/saml/signing.py", "sign_with"),
    ("      RSA sign (OpenSSL)", "~", "<method 'sign' of '_cffi_backend"),
    ("    bindings.post_form", "idp/saml/bindings.py", "post_form"),
    ("    audit.record", "idp/audit.py", "record"),
    ("    participants.record", "idp/participants.py", "record"),
    ("  _post_form (template)", "idp/views.py", "_post_form"),
    ("    render", "django/shortcuts.py", "render"),
    ("    keep_in_session", "idp/participants.py", "keep_in_session"),
    ("session load (cookie)", "signed_cookies.py", "load"),
    ("session save (cookie)", "signed_cookies.py", "save"),
    ("SessionMiddleware.process_response", "sessions/middleware.py", "process_response"),
    ("CsrfViewMiddleware", "middleware/csrf.py", "process_view"),
    ("CSP process_response", "csp/middleware.py", "process_response"),
    ("AxesMiddleware", "axes/middleware.py", "__call__"),
    ("Auth get_user", "contrib/auth/__init__.py", "get_user"),
    ("RevokedSessionMiddleware", "idp/sessions.py", "__call__"),
    ("PickedSessionMiddleware", "idp/picker.py", "__call__"),
    ("WhiteNoise", "whitenoise/middleware.py", "__call__"),
    ("URL resolve", "django/urls/resolvers.py", "resolve"),
    ("WSGIRequest init", "django/core/handlers/wsgi.py", "__init__"),
    ("request_started/finished signals", "django/dispatch/dispatcher.py", "send"),
    ("close_old_connections", "django/db/__init__.py", "close_old_connections"),
]


def prepare(workdir: Path) -> None:
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "IDP_CERTS_DIR": str(workdir / "certs"),
            "IDP_BASE_URL": "http://127.0.0.1:8000",
            "SECRET_KEY": "profile-request",
            "DJANGO_SETTINGS_MODULE": "idp.settings",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("bootstrap", verbosity=0)


def signed_in_cookie() -> str:
    from django.test import Client

    from users.models import User

    client = Client()
    client.force_login(User.objects.get(username="alice"))
    return "; ".join(f"{morsel.key}={morsel.value}" for morsel in client.cookies.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=0, help="also print cProfile's top N")
    arguments = parser.parse_args()
    prepare(Path(tempfile.mkdtemp(prefix="fedmock-profile-")))

    from idp import audit, watcher
    from idp.wsgi import application

    # As gunicorn's post_worker_init: keys and caches loaded, the audit batched; the
    # watcher's later refreshes (every half second there) are left out of the profile.
    watcher.start(interval=3600)
    cookie = signed_in_cookie()
    query = f"sp={quote('urn:amazon:webservices')}&role={quote(ROLE)}"

    def environ() -> dict:
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/saml/init/",
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_COOKIE": cookie,
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }

    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def one() -> None:
        body = b"".join(application(environ(), start_response))
        assert b'name="SAMLResponse"' in body, body[:500]

    for _ in range(50):
        one()
    audit.flush()
    times = []
    for _ in range(arguments.requests):
        start = time.perf_counter()
        one()
        times.append(time.perf_counter() - start)
        if len(times) % 200 == 0:
            audit.flush()  # the watcher's job under gunicorn, outside the request
    print(f"median per request: {statistics.median(times) * 1000:.3f} ms ({len(times)} requests)")

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(arguments.requests):
        one()
    profiler.disable()
    audit.flush()
    stats = pstats.Stats(profiler)
    per = 1000 / arguments.requests
    print(f"\ncumulative ms per request under cProfile (which inflates Python calls), n={per:.0f}")
    for label, fragment, function in PARTS:
        total = sum(
            entry[3]
            for (filename, _, name), entry in stats.stats.items()
            if fragment in filename and name.startswith(function)
        )
        print(f"  {label:40} {total * per:7.3f}")
    if arguments.top:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(arguments.top)
        print(out.getvalue())
    access_log_cost()


def access_log_cost() -> None:
    """gunicorn's Logger.access for one line like a sign-on's, to a file."""
    from datetime import timedelta

    from gunicorn.config import Config

    config = Config()
    log_file = tempfile.NamedTemporaryFile(suffix=".log", delete=False)
    config.set("accesslog", log_file.name)
    config.set("logger_class", os.environ.get("PROFILE_LOGGER_CLASS", "gunicorn.glogging.Logger"))
    logger = config.logger_class(config)

    class Response:
        status = "200 OK"
        status_code = 200
        response_length = 9000
        sent = 9000
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "9000")]

    class Request:
        headers = [("HOST", "127.0.0.1:8000"), ("COOKIE", "x" * 300)]

    request_environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/saml/init/?sp=urn%3Aamazon%3Awebservices&role=x",
        "PATH_INFO": "/saml/init/",
        "QUERY_STRING": "sp=urn%3Aamazon%3Awebservices&role=x",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_USER_AGENT": "wrk",
    }
    count = 20_000
    start = time.perf_counter()
    for _ in range(count):
        logger.access(Response(), Request(), request_environ, timedelta(milliseconds=3))
    elapsed = (time.perf_counter() - start) / count * 1000
    print(f"\naccess log line ({config.logger_class.__name__}): {elapsed:.3f} ms")
    print("  " + Path(log_file.name).read_text().splitlines()[-1])


if __name__ == "__main__":
    main()
