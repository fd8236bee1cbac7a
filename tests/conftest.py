import io

import pytest
from django.core.management import call_command
from django.db import DataError, connection

from idp import cache, faults, keys, participants, sessions
from idp.saml import signing


@pytest.fixture(scope="session")
def key_pems():
    """One RSA key for the whole run: generating one costs ~100 ms."""
    return signing.generate_self_signed("fedmock test")


def _holds_nul(params) -> bool:
    values = params.values() if isinstance(params, dict) else params or ()
    return any(isinstance(value, str) and "\x00" in value for value in values)


@pytest.fixture(autouse=True)
def refuse_nul_in_sql():
    """PostgreSQL refuses a NUL in a text parameter (psycopg's DataError: a 500), where SQLite
    takes it: refuse it here on both, so that `make test` catches what only `make test-postgres`
    would. Only the test's own thread: live servers' threads have their own connections."""

    def refuse(execute, sql, params, many, context):
        if many:
            params = [list(row) for row in params]
            holds = any(_holds_nul(row) for row in params)
        else:
            holds = _holds_nul(params)
        if holds:
            raise DataError(f"PostgreSQL text fields cannot contain NUL (0x00) bytes: {sql}")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield


@pytest.fixture(autouse=True)
def certs_dir(settings, tmp_path):
    # PBKDF2's deliberate slowness buys nothing for demo passwords in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.IDP_CERTS_DIR = tmp_path / "certs"
    keys.forget_cached_keys()
    cache.forget()
    sessions.forget()
    faults.forget_last_sent()  # replayed-id's memory: IDs from a database that is gone
    participants.forget()  # SLO session records buffered for a database that is gone
    yield settings.IDP_CERTS_DIR
    keys.forget_cached_keys()
    cache.forget()
    sessions.forget()
    faults.forget_last_sent()
    participants.forget()


@pytest.fixture
def signing_key(db, key_pems):
    return keys.store_key(*key_pems, state="active")


@pytest.fixture
def demo(db, signing_key):
    """The demo directory, the AWS preset and an active signing key."""
    call_command("seed_demo", stdout=io.StringIO())


@pytest.fixture
def idp_url(live_server, settings):
    """The IdP over real HTTP; its metadata names the live server's URL."""
    settings.IDP_BASE_URL = live_server.url
    return live_server.url
