"""Review of issue 12's RequestedAuthnContext and TOTP step: defects found, each pinned.

Codes are computed for the step that contains now (django-otp accepts one step either
side); no test sleeps or waits on django-otp's throttle."""

import pytest

from idp import cache, mfa
from users.models import User

from .test_issue12_mfa import SECRET, code_for


@pytest.fixture
def tom(demo):
    user = User.objects.create_user("tom", "tom@example.com", "tom")
    mfa.provision(user, mfa.secret_from_base32(SECRET))
    cache.refresh()
    return user


# --- one-time codes are one-time, even for two requests at once ----------------------


@pytest.mark.django_db
def test_two_requests_that_loaded_the_device_cannot_both_spend_one_code(tom):
    # Two workers each read the device (the code page does, before checking), then both
    # check the same code: django-otp's verify_token saves last_t without a lock.
    first, second = mfa.confirmed_device(tom), mfa.confirmed_device(tom)
    code = code_for(SECRET)
    assert mfa.check_code(first, code).ok
    replayed = mfa.check_code(second, code)
    assert not replayed.ok and "already used" in replayed.problem
