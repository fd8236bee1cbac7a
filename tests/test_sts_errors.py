"""The STS/IAM error catalogue: codes and statuses as botocore's models state them."""

import botocore.session
import pytest

from idp.sts import errors


def _modelled() -> dict[str, tuple[int, bool]]:
    session = botocore.session.get_session()
    shapes = {}
    for service in ("sts", "iam"):
        model = session.get_service_model(service)
        for operation in model.operation_names:
            for shape in model.operation_model(operation).error_shapes:
                # A shape without error metadata is answered under its own name, as a 400.
                error = shape.metadata.get("error", {"code": shape.name, "httpStatusCode": 400})
                shapes[error["code"]] = (error["httpStatusCode"], bool(error.get("senderFault")))
    return shapes


MODELLED = _modelled()


@pytest.mark.parametrize("code", sorted(set(errors.CODES) & set(MODELLED)))
def test_statuses_are_botocores(code):
    known = errors.CODES[code]
    assert (known.status, known.sender_fault) == MODELLED[code]


def test_every_code_of_the_operations_we_serve_is_catalogued():
    assert {
        "InvalidIdentityToken",
        "ExpiredTokenException",
        "IDPRejectedClaim",
        "MalformedPolicyDocument",
        "PackedPolicyTooLarge",
        "NoSuchEntity",
        "EntityAlreadyExists",
        "LimitExceeded",
        "InvalidInput",
    } <= set(MODELLED) & set(errors.CODES)


@pytest.mark.parametrize(
    ("error", "code", "message", "status", "sender_fault"),
    [
        (
            errors.SIGNATURE_INVALID.error("why"),
            "InvalidIdentityToken",
            "Response signature invalid",
            400,
            True,
        ),
        (
            errors.NOT_AUTHORIZED.error(action="sts:TagSession"),
            "AccessDenied",
            "Not authorized to perform sts:TagSession",
            403,
            True,
        ),
        (
            errors.RESPONSE_EXPIRED.error(),
            "ExpiredTokenException",
            "Response has expired",
            400,
            True,
        ),
        (
            errors.CREDENTIALS_EXPIRED.error(),
            "ExpiredToken",
            "The security token included in the request is expired",
            403,
            True,
        ),
        (
            errors.constraint(
                60, "durationSeconds", "Member must have value greater than or equal to 900"
            ),
            "ValidationError",
            "1 validation error detected: Value '60' at 'durationSeconds' failed to satisfy "
            "constraint: Member must have value greater than or equal to 900",
            400,
            True,
        ),
        (errors.StsError("ServiceFailure", "x"), "ServiceFailure", "x", 500, False),
        (errors.StsError("SomethingNew", "x"), "SomethingNew", "x", 400, True),
        (errors.StsError("AccessDenied", "x", status=400), "AccessDenied", "x", 400, True),
    ],
)
def test_an_error_carries_awss_code_message_and_status(error, code, message, status, sender_fault):
    assert (error.code, error.message, error.status, error.sender_fault) == (
        code,
        message,
        status,
        sender_fault,
    )
    assert str(error) == f"{code}: {message}"


def test_explained_adds_lines_and_keeps_the_rest():
    first = errors.ISSUER_MISMATCH.error("the Issuer is A", status_line := "IAM holds B")
    more = first.explained("fix: update the provider")
    assert more.explanation == ("the Issuer is A", status_line, "fix: update the provider")
    assert (more.code, more.message, more.status) == (first.code, first.message, first.status)
    assert first.explanation == ("the Issuer is A", "IAM holds B")


def test_documented_messages_name_their_source_and_fedmocks_do_not():
    documented = [m for m in vars(errors).values() if isinstance(m, errors.Message) and m.source]
    assert errors.SIGNATURE_INVALID in documented and errors.NOT_A_RESPONSE not in documented
    for message in vars(errors).values():
        if isinstance(message, errors.Message):
            assert message.code in errors.CODES, message
