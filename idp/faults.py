"""The Django-side glue of the fault scenarios (the catalogue and its pure steps are
idp/scenarios.py): an SP's standing fault profile, the per-process memory of the last
response sent to each SP (for replayed-id), and the notes a faulty response leaves in the
audit. idp/sso.py's `_issue` calls these where its steps run.
"""

import hashlib
import threading

from . import scenarios
from .models import AuditEvent, ServiceProvider
from .saml import responses
from .saml.errors import SamlError


class FaultProfileOnBlockingSP(SamlError):
    """A standing fault profile on an SP the AWS checks guard: nothing broken is sent to it."""

    def __init__(self, sp: ServiceProvider):
        super().__init__(
            "This service provider has a fault profile, and its check policy is block",
            f"{sp} is set to send the broken response {sp.fault_scenario!r} on every sign-on, "
            "but the AWS checks guard it and block what AWS would reject, so nothing was sent.",
            "Clear the fault profile in the admin, or set the SP's check policy to warn to send "
            "broken responses on purpose (docs/scenarios.md), or mint one with the scenario "
            "named (POST /api/v1/sign-ons, manage.py mint_response --scenario).",
            status=409,
        )


def fault_profile(sp: ServiceProvider) -> scenarios.Fault | None:
    """The SP's standing fault scenario, if any; refused where the block policy applies."""
    if not sp.fault_scenario:
        return None
    if sp.is_checked and sp.check_policy == ServiceProvider.CheckPolicy.BLOCK:
        # clean() refuses this pairing; a row written around it still sends nothing broken.
        raise FaultProfileOnBlockingSP(sp)
    try:
        return scenarios.parse(sp.fault_scenario)
    except SamlError as error:
        raise SamlError(
            "This service provider's fault profile is not in the catalogue",
            f"{sp} has fault profile {sp.fault_scenario!r}: {error.detail}",
            "Pick a scenario from docs/scenarios.md in the admin, or clear the fault profile.",
            status=409,
        ) from None


# The IDs of the last response sent to each SP, for replayed-id. Per process: under
# gunicorn a worker that has sent nothing yet reads the last one from the audit. At
# most LAST_SENT_MAX SPs, the least recently served forgotten first: SPs come and go
# (API, fixtures) for the life of a worker.
LAST_SENT_MAX = 1024
_last_sent: dict[str, scenarios.Earlier] = {}
_last_sent_lock = threading.Lock()


def remember_sent(entity_id: str, earlier: scenarios.Earlier) -> None:
    with _last_sent_lock:
        _last_sent.pop(entity_id, None)
        _last_sent[entity_id] = earlier
        while len(_last_sent) > LAST_SENT_MAX:
            del _last_sent[next(iter(_last_sent))]


def forget_last_sent() -> None:
    """Forget every SP's last response (tests: IDs from a database that is gone)."""
    with _last_sent_lock:
        _last_sent.clear()


def assertion_id_for(response_id: str) -> str:
    """The Assertion ID of the response with this ID: derived, not drawn, so that the
    audit's response ID is enough for replayed-id to send both IDs again (an SP's replay
    cache keeps assertion IDs). As unpredictable as the response ID it comes from."""
    return "_" + hashlib.sha256(b"fedmock assertion " + response_id.encode()).hexdigest()[:40]


def last_sent(sp: ServiceProvider) -> scenarios.Earlier | None:
    """The IDs of the last response sent to this SP: this process's memory, else the audit."""
    if earlier := _last_sent.get(sp.entity_id):
        return earlier
    response_id = (
        AuditEvent.objects.filter(sp_entity_id=sp.entity_id, outcome=AuditEvent.Outcome.SENT)
        .exclude(response_id="")
        .order_by("-created_at")
        .values_list("response_id", flat=True)
        .first()
    )
    return scenarios.Earlier(response_id, assertion_id_for(response_id)) if response_id else None


def audit_notes(fault: scenarios.Fault | None, explicit: bool, flow: str, as_of) -> list[str]:
    notes = []
    if fault is not None and explicit:
        notes.append(f"FAULT SCENARIO {fault.describe()} Named by the {flow} call.")
    elif fault is not None:
        notes.append(
            f"FAULT PROFILE {fault.describe()} This SP's fault profile broke the response on "
            "purpose; clear it in the admin to send real responses."
        )
    if as_of is not None:
        notes.append(
            f"Issued as of {responses.timestamp(as_of)}, the instant the caller named; the "
            "event's own time is the IdP's clock."
        )
    return notes
