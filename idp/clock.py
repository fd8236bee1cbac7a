"""The IdP's clock: the system clock plus IDP_CLOCK_OFFSET seconds.

Everything that stamps a response or judges a time reads `now()`: IssueInstant
and the validity window, AuthnRequest freshness, the one-answer-per-request
claim, the AWS checker's default instant and the audit. A test suite shifts
them all at once, without touching the system clock (as mock-oauth2-server's
fixed clock does), and a mint can pass its own instant instead.
"""

import datetime

from .conf import idp_settings


def offset() -> datetime.timedelta:
    return datetime.timedelta(seconds=idp_settings.IDP_CLOCK_OFFSET)


def system_now() -> datetime.datetime:
    """The system clock; tests replace this function to hold time still."""
    return datetime.datetime.now(datetime.UTC)


def now() -> datetime.datetime:
    """The IdP's current instant, aware and in UTC."""
    return system_now() + offset()


def from_system(timestamp: float) -> datetime.datetime:
    """A system-clock time.time() value (a login's instant) read on the IdP's clock."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC) + offset()
