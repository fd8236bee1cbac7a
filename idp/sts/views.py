"""The AWS Query-protocol door at /aws/: IAM's SAML/OIDC-provider and role slice, and STS.

botocore, boto3 and the AWS CLI reach it unchanged with `--endpoint-url
{IDP_BASE_URL}/aws/` (or AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_IAM): every call is a
form-encoded POST of Action=…&Version=…, answered in AWS's XML. The parameters are
parsed, and the answers written, by moto's Query parser and serializer from botocore's
own service models, so the shapes are the ones botocore parses.

One request, in order: parse -> authenticate the caller (SigV4, except
AssumeRoleWithSAML, which AWS accepts unsigned) -> the action (state.py, assertion.py,
policy.py) -> AWS's XML answer. A refusal is AWS's code, message and status, plus
fedmock's explanation in the X-Fedmock-Explanation header and the audit log (flow
"sts"), which AWS never gives.

Who may call IAM: any access key that is not a temporary one (ASIA…) acts as the root
of an account, as LocalStack does: a 12-digit key names the account, any other key is
the default account's (111122223333, the demo's). There is no secret to check it
against, and a local lab needs none; credentials the local STS issued are checked
(signature, session token, expiry) and act in their own account.
"""

import functools
import re

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from idp import audit, clock
from idp.models import AuditEvent

from . import assertion, errors, jwks, policy, sigv4, state, web_identity
from .errors import StsError

VERSIONS = {"iam": "2010-05-08", "sts": "2011-06-15"}  # an action of another is unknown
# botocore sends these without credentials, as AWS allows
UNSIGNED = {"AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"}
EXPLANATION_HEADER = "X-Fedmock-Explanation"
EXPLANATION_MAX = 4000  # one header line: proxies refuse very long ones
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@functools.cache
def _service_model(service: str):
    from moto.core.utils import get_service_model

    return get_service_model(service)


# --- parameters -----------------------------------------------------------------------


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _check_constraints(shape, params: dict) -> None:
    """The top-level constraints of botocore's model, in AWS's ValidationError words:
    a client other than botocore does not check them before sending."""
    for name in shape.required_members:
        if params.get(name) in (None, ""):
            raise errors.constraint(
                None, _lower_camel(name), "Member must not be null", (f"{name} is required",)
            )
    for name, member in shape.members.items():
        value = params.get(name)
        if value is None:
            continue
        low, high = member.metadata.get("min"), member.metadata.get("max")
        if member.type_name == "string":
            size = len(value)
            rule = "Member must have length"
        elif member.type_name == "integer":
            size = value
            rule = "Member must have value"
        else:
            continue
        shown = value if member.type_name == "integer" or len(value) <= 64 else value[:61] + "…"
        if low is not None and size < low:
            raise errors.constraint(
                shown, _lower_camel(name), f"{rule} greater than or equal to {low}"
            )
        if high is not None and size > high:
            raise errors.constraint(
                shown, _lower_camel(name), f"{rule} less than or equal to {high}"
            )


def _parse(service: str, action: str, values: dict) -> dict:
    from moto.core.parse import QueryParser

    operation = _service_model(service).operation_model(action)
    try:
        params = QueryParser(operation).parse(
            {
                "method": "POST",
                "values": values,
                "headers": {},
                "body": "",
                "url_path": "/",
                "url_params": {},
            }
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise StsError(
            "InvalidParameterValue",
            "A parameter's value is invalid.",
            (f"the parameters of {action} do not parse: {error}",),
        ) from None
    if operation.input_shape is not None:
        _check_constraints(operation.input_shape, params)
    return params


def _answer(service: str, action: str, result: dict, request_id: str) -> HttpResponse:
    from moto.core.serialize import QuerySerializer, SerializationContext

    operation = _service_model(service).operation_model(action)
    context = SerializationContext(request_id=request_id)
    answer = QuerySerializer(operation, context=context).serialize(result)
    return HttpResponse(
        answer["body"], status=answer["status_code"], content_type="text/xml; charset=utf-8"
    )


# --- errors ---------------------------------------------------------------------------


def _xml_text(text: str) -> str:
    text = _CONTROL.sub(" ", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def one_line(lines: tuple[str, ...]) -> str:
    """The explanation as one ASCII header line (non-ASCII as \\u escapes)."""
    text = _CONTROL.sub(" ", " | ".join(lines)).encode("ascii", "backslashreplace").decode()
    return text if len(text) <= EXPLANATION_MAX else text[: EXPLANATION_MAX - 1] + "~"


def _refusal(error: StsError, request_id: str) -> HttpResponse:
    namespace = "https://iam.amazonaws.com/doc/2010-05-08/"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error>'
        f"<Type>{'Sender' if error.sender_fault else 'Receiver'}</Type>"
        f"<Code>{_xml_text(error.code)}</Code><Message>{_xml_text(error.message)}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    response = HttpResponse(body, status=error.status, content_type="text/xml; charset=utf-8")
    response[EXPLANATION_HEADER] = one_line(error.explanation or (error.message,))
    return response


# --- the door -------------------------------------------------------------------------


class _Call:
    """What the audit needs to know about a call, filled in as the call proceeds."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.action = ""
        self.who = ""
        self.roles: list[str] = []


@csrf_exempt
def query(request: HttpRequest) -> HttpResponse:
    request_id = state.new_request_id()
    call = _Call(request_id)
    try:
        try:
            body = request.body
            values = request.POST if request.method == "POST" else request.GET
            values = {key: values[key] for key in values}  # the last of repeated keys
        except (RequestDataTooBig, SuspiciousOperation) as error:
            raise StsError(
                "InvalidParameterValue",
                "The request is too large.",
                (f"Django refused the body: {error} (DATA_UPLOAD_MAX_MEMORY_SIZE)",),
            ) from None
        _refuse_nul(values)
        call.action = action = values.get("Action", "")
        service, handler = ACTIONS.get(action, (None, None))
        version = values.get("Version")
        if handler is not None and version not in (None, VERSIONS[service]):
            raise errors.UNKNOWN_ACTION.error(
                f"{action} is a {service.upper()} action of API version {VERSIONS[service]}",
                action=action,
                version=version,
            )
        if handler is None:
            raise errors.UNKNOWN_ACTION.error(
                f"the local IAM and STS answer {', '.join(sorted(ACTIONS))}",
                action=action or "(none)",
                version=values.get("Version", "(none)"),
            )
        caller = None if action in UNSIGNED else _authenticate(request, body, call)
        params = _parse(service, action, values)
        result = handler(params, caller, call)
        return _answer(service, action, result, request_id)
    except StsError as error:
        _audit(call, request_id, error)
        return _refusal(error, request_id)


def _refuse_nul(values: dict[str, str]) -> None:
    """PostgreSQL cannot hold a NUL character: one in a parameter reaching a lookup or the
    audit is a DataError (a 500). No AWS name or value has one, so it is refused first."""
    for key, value in values.items():
        if "\x00" in key or "\x00" in value:
            member = _lower_camel(key.replace("\x00", "\\x00"))[:64]
            raise errors.constraint(
                None,
                member,
                "Member must not contain a NUL character",
                (f"the parameter {member} holds a NUL character",),
                sensitive=True,
            )


def _audit(call: _Call, request_id: str, error: StsError | None, detail: str = "") -> None:
    service = "sts" if call.action in STS_ACTIONS else "iam"
    audit.record(
        flow="sts",
        username=call.who[:150],
        sp_entity_id=f"{service}:{call.action}"[:1024] if call.action else "(no action)",
        request_id=request_id,
        roles=call.roles,
        outcome=AuditEvent.Outcome.REFUSED if error else AuditEvent.Outcome.SENT,
        detail=(
            f"{error.code}: {error.message}\n" + "\n".join(error.explanation) if error else detail
        ),
    )


def _authenticate(request: HttpRequest, body: bytes, call: _Call) -> state.Caller:
    authorization = request.headers.get("Authorization", "")
    if not authorization:
        raise errors.MISSING_AUTHENTICATION.error(
            f"{call.action} needs a SigV4-signed request; AssumeRoleWithSAML and "
            "AssumeRoleWithWebIdentity are the unsigned actions"
        )
    signature = sigv4.parse(authorization, request.headers.get("X-Amz-Date", ""))
    caller = state.caller_for_key(signature.access_key_id)
    if caller is None:
        raise errors.CREDENTIALS_INVALID.error(
            f"access key {signature.access_key_id} is temporary (ASIA…) but the local STS "
            "never issued it"
        )
    call.who = caller.arn
    issued = caller.credential
    if issued is None:
        return caller  # an account's root, LocalStack-style: no secret to check
    token = request.headers.get("X-Amz-Security-Token")
    if token != issued.session_token:
        raise errors.CREDENTIALS_INVALID.error(
            f"the session token sent with {issued.access_key_id} is not the one issued with it"
        )
    sigv4.check_scope(
        signature,
        service="sts" if call.action in STS_ACTIONS else "iam",
        now=clock.system_now(),  # the signer's clock against ours; IDP_CLOCK_OFFSET is not
    )
    url = f"{request.scheme}://{request.get_host()}{request.path}"
    if request.META.get("QUERY_STRING"):
        url += "?" + request.META["QUERY_STRING"]
    if not sigv4.matches(
        signature,
        secret_access_key=issued.secret_access_key,
        session_token=issued.session_token,
        method=request.method,
        url=url,
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
    ):
        raise errors.SIGNATURE_MISMATCH.error(
            f"signing {request.method} {request.path} again with the secret issued for "
            f"{issued.access_key_id} gives another signature"
        )
    now = clock.now()
    if now >= issued.expires_at:
        raise errors.CREDENTIALS_EXPIRED.error(
            f"{issued.access_key_id} ({issued.arn}) expired at "
            f"{issued.expires_at:%Y-%m-%dT%H:%M:%SZ}; the IdP clock says {now:%Y-%m-%dT%H:%M:%SZ}"
        )
    return caller


# --- IAM ------------------------------------------------------------------------------


def _account(caller: state.Caller) -> str:
    return caller.account_id


def create_saml_provider(params, caller, call):
    provider = state.create_provider(
        _account(caller), params["Name"], params["SAMLMetadataDocument"], clock.now()
    )
    return {"SAMLProviderArn": provider.arn}


def update_saml_provider(params, caller, call):
    provider = state.update_provider(params["SAMLProviderArn"], params["SAMLMetadataDocument"])
    return {"SAMLProviderArn": provider.arn}


def get_saml_provider(params, caller, call):
    provider = state.get_provider(params["SAMLProviderArn"])
    return {
        "SAMLProviderUUID": None,
        "SAMLMetadataDocument": provider.saml_metadata_document,
        "CreateDate": provider.create_date,
        "ValidUntil": provider.valid_until,
        "SAMLProviderArn": provider.arn,
    }


def list_saml_providers(params, caller, call):
    return {
        "SAMLProviderList": [
            {"Arn": p.arn, "ValidUntil": p.valid_until, "CreateDate": p.create_date}
            for p in state.list_providers(_account(caller))
        ]
    }


def delete_saml_provider(params, caller, call):
    state.delete_provider(params["SAMLProviderArn"])
    return {}


def create_oidc_provider(params, caller, call):
    row = state.create_oidc_provider(
        _account(caller),
        params["Url"],
        params.get("ClientIDList", []),
        params.get("ThumbprintList", []),
        clock.now(),
    )
    return {"OpenIDConnectProviderArn": row.arn}


def get_oidc_provider(params, caller, call):
    row = state.get_oidc_provider(params["OpenIDConnectProviderArn"])
    return {
        "Url": row.url,
        "ClientIDList": list(row.client_ids),
        "ThumbprintList": list(row.thumbprints),
        "CreateDate": row.created_at,
    }


def list_oidc_providers(params, caller, call):
    return {
        "OpenIDConnectProviderList": [
            {"Arn": row.arn} for row in state.list_oidc_providers(_account(caller))
        ]
    }


def delete_oidc_provider(params, caller, call):
    state.delete_oidc_provider(params["OpenIDConnectProviderArn"])
    return {}


def update_oidc_thumbprint(params, caller, call):
    state.update_oidc_thumbprints(params["OpenIDConnectProviderArn"], params["ThumbprintList"])
    return {}


def add_oidc_client_id(params, caller, call):
    state.add_oidc_client_id(params["OpenIDConnectProviderArn"], params["ClientID"])
    return {}


def _role_shape(role) -> dict:
    return {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.id,
        "Arn": role.arn,
        "CreateDate": role.create_date,
        "AssumeRolePolicyDocument": role.assume_role_policy_document,
        "Description": role.description or None,
        "MaxSessionDuration": int(role.max_session_duration),
    }


def create_role(params, caller, call):
    role = state.create_role(
        _account(caller),
        params["RoleName"],
        params["AssumeRolePolicyDocument"],
        clock.now(),
        path=params.get("Path", "/"),
        max_session_duration=params.get("MaxSessionDuration", state.SESSION_MIN),
        description=params.get("Description", ""),
    )
    return {"Role": _role_shape(role)}


def get_role(params, caller, call):
    return {"Role": _role_shape(state.get_role(_account(caller), params["RoleName"]))}


def update_assume_role_policy(params, caller, call):
    state.update_trust_policy(_account(caller), params["RoleName"], params["PolicyDocument"])
    return {}


def update_role(params, caller, call):
    state.update_role(
        _account(caller),
        params["RoleName"],
        params.get("MaxSessionDuration"),
        params.get("Description"),
    )
    return {}


def delete_role(params, caller, call):
    state.delete_role(_account(caller), params["RoleName"])
    return {}


def list_roles(params, caller, call):
    roles, marker = state.list_roles(
        _account(caller),
        params.get("PathPrefix", "/"),
        params.get("Marker"),
        params.get("MaxItems"),
    )
    return {
        "Roles": [_role_shape(role) for role in roles],
        "IsTruncated": marker is not None,
        "Marker": marker,
    }


# --- STS ------------------------------------------------------------------------------


def _credentials(issued) -> dict:
    return {
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "SessionToken": issued.session_token,
        "Expiration": issued.expires_at,
    }


def _issued(call: _Call, request_id: str, issued) -> None:
    _audit(
        call,
        request_id,
        None,
        f"issued {issued.access_key_id} for {issued.arn}, "
        f"expiring {issued.expires_at:%Y-%m-%dT%H:%M:%SZ}",
    )


def assume_role_with_saml(params, caller, call):
    role_arn, principal_arn = params["RoleArn"], params["PrincipalArn"]
    call.roles = [f"{role_arn},{principal_arn}"]
    metadata = state.provider_metadata(principal_arn)
    if metadata is None:
        raise errors.PROVIDER_NOT_FOUND.error(f"no SAML provider {principal_arn} in the local IAM")
    role = state.role_by_arn(role_arn)
    if role is None:
        raise errors.NOT_AUTHORIZED.error(
            f"no role {role_arn} in the local IAM (AWS does not say so, to hide which roles exist)",
            action="sts:AssumeRoleWithSAML",
        )
    now = clock.now()
    validated = assertion.validate(
        params["SAMLAssertion"],
        role_arn=role_arn,
        principal_arn=principal_arn,
        provider_metadata=metadata,
        duration_seconds=params.get("DurationSeconds"),
        role_max_session_duration=role.max_session_duration,
        now=now,
    )
    call.who = validated.session_name or validated.subject
    actions = validated.required_actions  # + sts:TagSession, sts:SetSourceIdentity as sent
    decision = policy.evaluate(
        role.trust_policy,
        policy.PolicyRequest(
            principal={"Federated": [principal_arn]},
            actions=actions,
            context=validated.policy_context(),
        ),
    )
    if not decision.allowed:
        raise errors.NOT_AUTHORIZED.error(
            *decision.explanation, action=decision.denied_action or actions[0]
        )
    issued = state.issue_role_session(
        role,
        validated.session_name,
        validated.duration_seconds,
        now,
        action="AssumeRoleWithSAML",
        source_identity=validated.source_identity or "",
        tags=validated.tags,
        transitive_tag_keys=validated.transitive_tag_keys,
    )
    _issued(call, call.request_id, issued)
    result = {
        "Credentials": _credentials(issued),
        "AssumedRoleUser": {"AssumedRoleId": issued.user_id, "Arn": issued.arn},
        "Subject": validated.subject,
        "SubjectType": validated.subject_type,
        "Issuer": validated.issuer,
        "Audience": validated.audience,
        "NameQualifier": validated.name_qualifier,
    }
    if validated.source_identity:
        result["SourceIdentity"] = validated.source_identity
    return result


def assume_role_with_web_identity(params, caller, call):
    role_arn, session_name = params["RoleArn"], params["RoleSessionName"]
    token = params["WebIdentityToken"]
    call.roles = [role_arn]
    if not re.fullmatch(r"[\w+=,.@-]{2,64}", session_name, re.ASCII):
        raise errors.constraint(
            session_name,
            "roleSessionName",
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        )
    role = state.role_by_arn(role_arn)
    if role is None:
        raise errors.NOT_AUTHORIZED.error(
            f"no role {role_arn} in the local IAM (AWS does not say so, to hide which roles exist)",
            action="sts:AssumeRoleWithWebIdentity",
        )
    issuer = web_identity.issuer_of(token)
    if issuer is None:
        raise web_identity.NOT_A_JWT.error("the token has no readable iss claim")
    row = state.oidc_provider_for_issuer(role.account_id, issuer)
    if row is None:
        raise web_identity.NO_PROVIDER.error(
            f"account {role.account_id} has no OIDC provider for {issuer} "
            "(CreateOpenIDConnectProvider)",
            issuer=issuer,
        )
    provider = web_identity.Provider(row.issuer, tuple(row.client_ids), row.arn)
    now = clock.now()
    validated = web_identity.validate(
        token,
        provider=provider,
        jwks=jwks.keys_for(row.issuer, web_identity.kid_of(token)),
        now=now,
        duration_seconds=params.get("DurationSeconds"),
        role_max_session_duration=role.max_session_duration,
    )
    call.who = validated.subject
    # + sts:TagSession when the token passes tags, sts:SetSourceIdentity when it names one
    actions = validated.required_actions
    decision = policy.evaluate(
        role.trust_policy,
        policy.PolicyRequest(
            principal={"Federated": [row.arn]},
            actions=actions,
            context={**validated.policy_context(), "sts:RoleSessionName": session_name},
        ),
    )
    if not decision.allowed:
        raise errors.NOT_AUTHORIZED.error(
            *decision.explanation, action=decision.denied_action or actions[0]
        )
    session = validated.session
    issued = state.issue_role_session(
        role,
        session_name,
        validated.duration_seconds,
        now,
        action="AssumeRoleWithWebIdentity",
        source_identity=session.source_identity or "",
        tags=session.tags,
        transitive_tag_keys=session.transitive_tag_keys,
    )
    _issued(call, call.request_id, issued)
    result = {
        "Credentials": _credentials(issued),
        "SubjectFromWebIdentityToken": validated.subject,
        "AssumedRoleUser": {"AssumedRoleId": issued.user_id, "Arn": issued.arn},
        "Provider": row.url,
        "Audience": validated.audience,
    }
    if session.source_identity:
        result["SourceIdentity"] = session.source_identity
    return result


def _session_duration(requested, role, caller: state.Caller) -> int:
    duration = requested if requested is not None else 3600
    chained = caller.credential is not None and ":assumed-role/" in caller.arn
    if chained and duration > 3600:
        raise StsError(
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed "
            "by role chaining.",
            (f"{caller.arn} is a role session; role chaining lasts at most 3600 s",),
        )
    if duration > role.max_session_duration:
        raise errors.DURATION_ABOVE_ROLE_MAX.error(
            f"DurationSeconds {duration} > the role's MaxSessionDuration "
            f"{role.max_session_duration}"
        )
    return duration


def _session_role_arn(caller: state.Caller) -> list[str]:
    """A role session's principal also names its role, as trust policies do."""
    match = re.fullmatch(r"arn:aws:sts::([0-9]{12}):assumed-role/([^/]+)/.*", caller.arn)
    return [f"arn:aws:iam::{match[1]}:role/{match[2]}"] if match else []


def assume_role(params, caller, call):
    role_arn, session_name = params["RoleArn"], params["RoleSessionName"]
    call.roles = [role_arn]
    if not re.fullmatch(r"[\w+=,.@-]{2,64}", session_name, re.ASCII):
        raise errors.constraint(
            session_name,
            "roleSessionName",
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        )
    role = state.role_by_arn(role_arn)
    refusal = functools.partial(
        errors.NOT_AUTHORIZED_ON.error,
        caller=caller.arn,
        action="sts:AssumeRole",
        resource=role_arn,
    )
    if role is None:
        raise refusal(f"no role {role_arn} in the local IAM")
    tags = {tag["Key"]: tag.get("Value", "") for tag in params.get("Tags", [])}
    source_identity = params.get("SourceIdentity", "")
    actions = ("sts:AssumeRole",)
    if tags:
        actions += ("sts:TagSession",)
    if source_identity:
        actions += ("sts:SetSourceIdentity",)
    context = {
        "aws:PrincipalArn": caller.arn,
        "aws:PrincipalAccount": caller.account_id,
        "sts:RoleSessionName": session_name,
        "sts:ExternalId": params.get("ExternalId"),
        "sts:SourceIdentity": source_identity or None,
        "aws:TagKeys": list(tags) if tags else None,
        **{f"aws:RequestTag/{key}": value for key, value in tags.items()},
    }
    decision = policy.evaluate(
        role.trust_policy,
        policy.PolicyRequest(
            principal={"AWS": [caller.arn, *_session_role_arn(caller)]},
            actions=actions,
            context=context,
        ),
    )
    if not decision.allowed:
        raise StsError(
            "AccessDenied",
            errors.NOT_AUTHORIZED_ON.text.format(
                caller=caller.arn, action=decision.denied_action or actions[0], resource=role_arn
            ),
            decision.explanation,
        )
    duration = _session_duration(params.get("DurationSeconds"), role, caller)
    now = clock.now()
    issued = state.issue_role_session(
        role, session_name, duration, now, action="AssumeRole", source_identity=source_identity
    )
    _issued(call, call.request_id, issued)
    result = {
        "Credentials": _credentials(issued),
        "AssumedRoleUser": {"AssumedRoleId": issued.user_id, "Arn": issued.arn},
    }
    if source_identity:
        result["SourceIdentity"] = source_identity
    return result


def get_federation_token(params, caller, call):
    name = params["Name"]
    if not re.fullmatch(r"[\w+=,.@-]{2,32}", name, re.ASCII):
        raise errors.constraint(
            name, "name", "Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )
    if caller.credential is not None:
        raise errors.FEDERATION_WITH_SESSION.error(
            f"{caller.arn} is a session of the local STS; GetFederationToken needs an IAM "
            "user's (here: an account root's) long-term key"
        )
    # AWS: a root user's federation session lasts at most one hour, whatever was asked.
    duration = min(params.get("DurationSeconds", 3600), 3600)
    issued = state.issue_federation_token(caller.account_id, name, duration, clock.now())
    _issued(call, call.request_id, issued)
    return {
        "Credentials": _credentials(issued),
        "FederatedUser": {"FederatedUserId": issued.user_id, "Arn": issued.arn},
    }


def get_caller_identity(params, caller, call):
    return {"UserId": caller.user_id, "Account": caller.account_id, "Arn": caller.arn}


IAM_ACTIONS = {
    "CreateSAMLProvider": create_saml_provider,
    "UpdateSAMLProvider": update_saml_provider,
    "GetSAMLProvider": get_saml_provider,
    "ListSAMLProviders": list_saml_providers,
    "DeleteSAMLProvider": delete_saml_provider,
    "CreateOpenIDConnectProvider": create_oidc_provider,
    "GetOpenIDConnectProvider": get_oidc_provider,
    "ListOpenIDConnectProviders": list_oidc_providers,
    "DeleteOpenIDConnectProvider": delete_oidc_provider,
    "UpdateOpenIDConnectProviderThumbprint": update_oidc_thumbprint,
    "AddClientIDToOpenIDConnectProvider": add_oidc_client_id,
    "CreateRole": create_role,
    "GetRole": get_role,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
    "UpdateRole": update_role,
    "DeleteRole": delete_role,
    "ListRoles": list_roles,
}
STS_ACTIONS = {
    "AssumeRoleWithSAML": assume_role_with_saml,
    "AssumeRoleWithWebIdentity": assume_role_with_web_identity,
    "AssumeRole": assume_role,
    "GetFederationToken": get_federation_token,
    "GetCallerIdentity": get_caller_identity,
}
ACTIONS = {
    **{action: ("iam", handler) for action, handler in IAM_ACTIONS.items()},
    **{action: ("sts", handler) for action, handler in STS_ACTIONS.items()},
}
