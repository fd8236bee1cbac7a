"""One response per AuthnRequest: the claim that makes resume links and request IDs one-time.

A claim is one INSERT against a unique constraint, so it holds across workers and
hosts. It is made only when an SP-initiated response is about to be sent; the
IdP-initiated path (no request) stays free of synchronous SQL.
"""

import datetime

from django.db import IntegrityError, transaction

from .models import AnsweredRequest
from .saml.errors import SamlError


class AlreadyAnswered(SamlError):
    def __init__(self, sp_entity_id: str, request_id: str):
        super().__init__(
            "This sign-on request was already answered",
            f"AuthnRequest {request_id[:80]!r} from {sp_entity_id[:200]} has had its response; "
            "each request gets exactly one, so a replayed request or a reused sign-on link is "
            "refused.",
            "Start the sign-on again at the service provider: it sends a new request.",
        )


def claim(sp_entity_id: str, request_id: str, now: datetime.datetime, keep_for: float) -> None:
    """Record that this request is being answered; raise AlreadyAnswered if it was before."""
    try:
        with transaction.atomic():
            AnsweredRequest.objects.create(
                sp_entity_id=sp_entity_id,
                request_id=request_id,
                answered_at=now,
                expires_at=now + datetime.timedelta(seconds=keep_for),
            )
    except IntegrityError:
        raise AlreadyAnswered(sp_entity_id, request_id) from None


def prune(now: datetime.datetime) -> int:
    """Forget claims for requests that could no longer be answered anyway."""
    deleted, _ = AnsweredRequest.objects.filter(expires_at__lte=now).delete()
    return deleted
