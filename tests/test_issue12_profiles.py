"""Issue 12 item 4: attribute profiles that stock SPs understand.

The saml-uri rule set against pysaml2 with only the standard URI converters (the names
Shibboleth's stock attribute map shares), RequestedAttributes of SP metadata, and the
generic set an SP gets when it is imported without one.
"""

import base64
import io
import re
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from lxml import etree
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from rest_framework.test import APIClient
from saml2.attribute_converter import _attribute_map_module_to_acs
from saml2.attributemaps import saml_uri

from idp import claims, identity, keys, sso
from idp.api.models import ApiToken
from idp.fixtures import applying
from idp.models import ServiceProvider
from idp.presets import RULE_SETS, apply_rule_set
from idp.saml import constants as c
from users.models import User

from .agents import ServiceProvider as Pysaml2SP

pytestmark = pytest.mark.django_db

SP_ENTITY = "https://sp.example.test/metadata"
SP_ACS = "https://sp.example.test/acs"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
# SAML V2.0 Subject Identifier Attributes, section 3.3.1 (subject-id) and 3.4.1 (pairwise-id).
SCOPED = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9=-]{0,126}@[a-zA-Z0-9][a-zA-Z0-9.-]{0,126}$")


def uri_only(sp: Pysaml2SP) -> Pysaml2SP:
    """The SP maps only the standard URI names and drops every other attribute."""
    sp.client.config.attribute_converters = _attribute_map_module_to_acs(saml_uri)
    sp.client.config.allow_unknown_attributes = False
    return sp


def with_requests(metadata: bytes, requested: list[tuple[str, str, str]]) -> bytes:
    """The SP's metadata with an AttributeConsumingService listing (Name, NameFormat, Friendly)."""
    root = etree.fromstring(metadata)
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    service = etree.SubElement(descriptor, f"{{{MD}}}AttributeConsumingService", index="1")
    etree.SubElement(
        service, f"{{{MD}}}ServiceName", {"{http://www.w3.org/XML/1998/namespace}lang": "en"}
    ).text = "Test"
    for name, name_format, friendly in requested:
        attributes = {"Name": name, "isRequired": "true"}
        if name_format:
            attributes["NameFormat"] = name_format
        if friendly:
            attributes["FriendlyName"] = friendly
        etree.SubElement(service, f"{{{MD}}}RequestedAttribute", attributes)
    return etree.tostring(root)


def register(tmp_path, metadata: bytes, *options: str) -> ServiceProvider:
    path = tmp_path / "sp-metadata.xml"
    path.write_bytes(metadata)
    call_command("import_sp_metadata", str(path), *options, stdout=io.StringIO())
    return ServiceProvider.objects.get(entity_id=SP_ENTITY)


@pytest.fixture
def pysaml2_sp(demo, tmp_path):
    sp = Pysaml2SP(tmp_path / "sp", identity.metadata_xml(), entity_id=SP_ENTITY, acs=SP_ACS)
    sp.client.want_response_signed = False
    return sp


def sign_on(sp: Pysaml2SP, username: str = "alice") -> dict:
    request_id, _ = sp.redirect_request()
    minted = sso.mint(username, SP_ENTITY, in_response_to=request_id)
    return sp.accept(minted.saml_response, request_id).ava


STOCK = {"mail": ["alice@example.com"], "givenName": ["Alice"], "sn": ["Anders"]}


@pytest.mark.parametrize(
    ("rule_set", "expected"),
    [
        ("saml-uri", STOCK),
        ("generic", {}),  # basic names: what a stock Shibboleth SP did not understand
    ],
)
def test_a_stock_uri_sp_receives_mail_given_name_and_sn(pysaml2_sp, tmp_path, rule_set, expected):
    sp = register(tmp_path, pysaml2_sp.metadata(), "--rule-set", rule_set)
    assert [rule.attribute_name for rule in sp.rules.order_by("order")] == [
        spec["attribute_name"] for spec in RULE_SETS[rule_set].rules
    ]
    ava = sign_on(uri_only(pysaml2_sp))
    assert {name: ava[name] for name in STOCK if name in ava} == expected


OIDS = {
    "mail": "urn:oid:0.9.2342.19200300.100.1.3",
    "givenName": "urn:oid:2.5.4.42",
    "sn": "urn:oid:2.5.4.4",
    "displayName": "urn:oid:2.16.840.1.113730.3.1.241",
    "eduPersonPrincipalName": "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
    "eduPersonAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
    "isMemberOf": "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    "subject-id": "urn:oasis:names:tc:SAML:attribute:subject-id",
    "pairwise-id": "urn:oasis:names:tc:SAML:attribute:pairwise-id",
}


@pytest.mark.parametrize(("friendly", "name"), sorted(OIDS.items()))
def test_saml_uri_names_are_pysaml2s_standard_ones(friendly, name):
    spec = next(r for r in RULE_SETS["saml-uri"].rules if r["friendly_name"] == friendly)
    assert (spec["attribute_name"], spec["name_format"]) == (name, c.ATTRNAME_URI)
    assert saml_uri.MAP["to"][friendly] == name  # pysaml2's own map, not a guess


def test_every_saml_uri_attribute_reaches_the_stock_sp(pysaml2_sp, tmp_path):
    register(tmp_path, pysaml2_sp.metadata(), "--rule-set", "saml-uri")
    ava = sign_on(uri_only(pysaml2_sp))
    scope = identity.scope()
    assert ava["displayName"] == ["Alice Anders"]
    assert ava["eduPersonPrincipalName"] == [f"alice@{scope}"]
    assert ava["eduPersonAffiliation"] == ["member"]
    assert "Engineering" in ava["isMemberOf"]
    assert [SCOPED.match(v) is not None for v in ava["subject-id"] + ava["pairwise-id"]] == [
        True,
        True,
    ]


def test_subject_id_is_per_user_and_pairwise_id_per_sp_and_stable(demo):
    aws_sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    other = ServiceProvider(entity_id="https://other.example.test/sp")
    scope = identity.scope()
    assert claims.subject_id("alice") == claims.subject_id("alice")
    assert claims.subject_id("alice") != claims.subject_id("bob")
    assert claims.pairwise_id("alice", aws_sp) == claims.pairwise_id("alice", aws_sp)
    assert claims.pairwise_id("alice", aws_sp) != claims.pairwise_id("alice", other)
    assert claims.pairwise_id("alice", aws_sp) != claims.pairwise_id("bob", aws_sp)
    for value in (claims.subject_id("alice"), claims.pairwise_id("alice", other)):
        assert SCOPED.match(value) and value.endswith(f"@{scope}")


# Requested attributes, and who releases each: the SP's generic rule or the request.
REQUESTED = [
    (OIDS["mail"], c.ATTRNAME_URI, "mail", ["alice@example.com"], "request"),
    (OIDS["displayName"], c.ATTRNAME_URI, "displayName", ["Alice Anders"], "request"),
    ("department", c.ATTRNAME_BASIC, "", ["Engineering"], "request"),  # a user attribute
    ("email", c.ATTRNAME_BASIC, "email", ["alice@example.com"], "rule"),  # generic has it
    ("urn:example:unknown", c.ATTRNAME_URI, "", None, None),  # nothing fills it
]


@pytest.fixture
def requesting_sp(pysaml2_sp, tmp_path):
    metadata = with_requests(pysaml2_sp.metadata(), [r[:3] for r in REQUESTED])
    return register(tmp_path, metadata)


@pytest.mark.parametrize(("name", "name_format", "friendly", "values", "by"), REQUESTED)
def test_requested_attributes_are_released_and_the_preview_says_by_whom(
    requesting_sp, name, name_format, friendly, values, by
):
    preview = sso.preview(alice(), requesting_sp)
    released = {a.name: (a, sources) for a, sources in preview.evaluation.released}
    if values is None:
        assert name not in released
        return
    attribute, sources = released[name]
    assert (list(attribute.values), attribute.name_format) == (values, name_format)
    assert len(sources) == 1
    assert (claims.REQUESTED in str(sources[0])) == (by == "request")


def test_the_admin_preview_shows_what_released_each_attribute(requesting_sp, admin_client):
    page = admin_client.get(
        f"/admin/idp/serviceprovider/{requesting_sp.pk}/preview/", {"user": alice().pk}
    ).content.decode()
    assert "released by" in page
    assert "requested in the SP&#x27;s metadata (isRequired)" in page


def alice():
    return User.objects.get(username="alice")


def test_an_sp_with_requests_receives_them(pysaml2_sp, requesting_sp):
    ava = sign_on(uri_only(pysaml2_sp))
    assert ava["mail"] == ["alice@example.com"]
    assert ava["displayName"] == ["Alice Anders"]


def test_an_sp_rule_for_a_requested_name_wins_over_the_request(pysaml2_sp, requesting_sp):
    apply_rule_set(requesting_sp, "saml-uri")  # now mail and displayName come from rules
    preview = sso.preview(alice(), requesting_sp)
    sources = dict((a.name, s) for a, s in preview.evaluation.released)
    assert not any(claims.REQUESTED in str(s) for s in sources[OIDS["mail"]])
    assert any(claims.REQUESTED in str(s) for s in sources["department"])


# --- An SP registered without a rule set -------------------------------------------


def python3_saml_defaults_accept(saml_response: str, request_id: str) -> tuple[bool, str]:
    """python3-saml strict, with its default security settings (wantAttributeStatement on)."""
    settings = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {
                "entityId": SP_ENTITY,
                "assertionConsumerService": {"url": SP_ACS, "binding": c.BINDING_POST},
            },
            "idp": {
                "entityId": identity.entity_id(),
                "singleSignOnService": {"url": identity.sso_url(), "binding": c.BINDING_REDIRECT},
                "x509cert": keys.active_key().cert_base64,
            },
        },
        sp_validation_only=True,
    )
    assert settings.get_security_data()["wantAttributeStatement"] is True
    response = OneLogin_Saml2_Response(settings, saml_response)
    request = {"https": "on", "http_host": "sp.example.test", "script_name": "/acs"}
    return response.is_valid(request, request_id), response.get_error() or ""


def _by_command(tmp_path, metadata: bytes) -> None:
    register(tmp_path, metadata)


def _by_fixture(tmp_path, metadata: bytes) -> None:
    applying.load({"service_providers": [{"metadata": metadata.decode()}]}, source="test")


def _by_api(tmp_path, metadata: bytes) -> None:
    created = root_api().post(
        "/api/v1/service-providers", {"metadata_xml": metadata.decode()}, format="json"
    )
    assert created.status_code == 201, created.content


def _by_admin_import(tmp_path, metadata: bytes) -> None:
    admin = Client()
    admin.force_login(User.objects.get(username="admin"))
    response = admin.post(
        "/admin/idp/serviceprovider/import-metadata/",
        {"metadata": metadata.decode(), "name": "", "rule_set": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]


def _by_admin_add(tmp_path, metadata: bytes) -> None:
    """Added by hand: the endpoints given in the form, no metadata, no rules."""
    admin = Client()
    admin.force_login(User.objects.get(username="admin"))
    form = admin.get("/admin/idp/serviceprovider/add/").context["adminform"].form
    data = {
        name: field.initial if field.initial is not None else ""
        for name, field in form.fields.items()
    }
    data = {k: v for k, v in data.items() if v is not False}
    data.update(entity_id=SP_ENTITY, name="By hand")
    for prefix, extra in (
        (
            "endpoints",
            {"location": SP_ACS, "binding": c.BINDING_POST, "index": 0, "is_default": "on"},
        ),
        ("logout_endpoints", {}),  # the SP's SingleLogoutService inline (issue 12 part S)
        ("rules", {}),
    ):
        data.update({f"{prefix}-TOTAL_FORMS": 1 if extra else 0, f"{prefix}-INITIAL_FORMS": 0})
        data.update({f"{prefix}-0-{k}": v for k, v in extra.items()})
    response = admin.post("/admin/idp/serviceprovider/add/", data)
    errors = response.context and [
        response.context["adminform"].form.errors,
        [
            (f.formset.prefix, f.formset.errors, f.formset.non_form_errors())
            for f in response.context["inline_admin_formsets"]
        ],
    ]
    assert response.status_code == 302, errors


def root_api():
    from tests.api_support import token_for

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(User.objects.get(username='admin'))}")
    return api


@pytest.mark.parametrize(
    "path",
    [_by_command, _by_fixture, _by_api, _by_admin_import, _by_admin_add],
    ids=["import_sp_metadata", "fixture", "api", "admin-import", "admin-add"],
)
def test_an_sp_imported_without_a_rule_set_gets_generic_and_python3_saml_accepts(
    pysaml2_sp, tmp_path, path
):
    path(tmp_path, pysaml2_sp.metadata())
    sp = ServiceProvider.objects.get(entity_id=SP_ENTITY)
    assert sorted(r.attribute_name for r in sp.rules.all()) == sorted(
        spec["attribute_name"] for spec in RULE_SETS["generic"].rules
    )
    request_id, _ = pysaml2_sp.redirect_request()
    minted = sso.mint("carol", SP_ENTITY, in_response_to=request_id)
    assert "AttributeStatement>" in base64.b64decode(minted.saml_response).decode()
    assert python3_saml_defaults_accept(minted.saml_response, request_id) == (True, "")


def test_without_rules_python3_saml_refuses(pysaml2_sp, tmp_path):
    """The check above can fail: the same SP with its rules removed is refused."""
    register(tmp_path, pysaml2_sp.metadata()).rules.all().delete()
    request_id, _ = pysaml2_sp.redirect_request()
    minted = sso.mint("carol", SP_ENTITY, in_response_to=request_id)
    valid, error = python3_saml_defaults_accept(minted.saml_response, request_id)
    assert not valid and "AttributeStatement" in error


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        # (Name, NameFormat, FriendlyName) asked -> (values, NameFormat, FriendlyName) sent
        ((OIDS["sn"], "", ""), (["Anders"], c.ATTRNAME_URI, "sn")),  # saml-uri's own name
        (("uid", "", ""), (["alice"], c.ATTRNAME_UNSPECIFIED, "uid")),  # no format: unspecified
        (("urn:x:family", c.ATTRNAME_URI, "sn"), (["Anders"], c.ATTRNAME_URI, "sn")),  # by friendly
        (("costCenter", c.ATTRNAME_BASIC, "cc"), (["4711"], c.ATTRNAME_BASIC, "cc")),  # attribute
    ],
)
def test_a_request_keeps_the_sps_name_and_says_its_format(
    pysaml2_sp, tmp_path, requested, expected
):
    sp = register(tmp_path, with_requests(pysaml2_sp.metadata(), [requested]))
    released = {a.name: a for a, _ in sso.preview(alice(), sp).evaluation.released}
    attribute = released[requested[0]]
    assert (list(attribute.values), attribute.name_format, attribute.friendly_name) == expected


# --- The API's preview says what released each attribute, as the admin's does -----------

PREVIEWER = ["idp.preview_signed_response", "idp.view_serviceprovider"]


def api_as(*permissions: str, scopes: list[str] | None = None) -> APIClient:
    user = User.objects.create_user(f"staff{len(permissions)}{scopes}", is_staff=True)
    for name in permissions:
        app, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(user, scopes=scopes)[1]}")
    return client


def preview_url(sp: ServiceProvider) -> str:
    return f"/api/v1/service-providers/{quote(sp.entity_id, safe='')}/preview"


def test_the_api_preview_says_what_released_each_attribute(requesting_sp):
    answer = api_as(*PREVIEWER).post(
        preview_url(requesting_sp), {"username": "alice"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    by_name = {a["name"]: a for a in body["attributes"]}
    generic_email = requesting_sp.rules.get(attribute_name="email")
    assert by_name["email"]["released_by"] == [
        {"rule": generic_email.pk, "description": str(generic_email)}
    ]
    [request] = by_name[OIDS["displayName"]]["released_by"]
    assert request["rule"] is None and claims.REQUESTED in request["description"]
    assert by_name[OIDS["displayName"]]["values"] == ["Alice Anders"]
    assert "urn:example:unknown" not in by_name
    assert body["name_id"]["format"] == requesting_sp.nameid_format
    signed = etree.fromstring(body["xml"].encode())
    assert signed.find(f"{{{c.DS}}}Signature") is not None


PREVIEW_REFUSALS = {
    "an unknown user": (PREVIEWER, None, {"username": "nobody"}, 400),
    "no username": (PREVIEWER, None, {}, 400),
    "without the preview permission": (["idp.view_serviceprovider"], None, {"username": "a"}, 403),
    "without the sign-on scope": (PREVIEWER, ["read"], {"username": "alice"}, 403),
}


@pytest.mark.parametrize(
    ("permissions", "scopes", "body", "status"), PREVIEW_REFUSALS.values(), ids=PREVIEW_REFUSALS
)
def test_the_api_preview_refuses(requesting_sp, permissions, scopes, body, status):
    answer = api_as(*permissions, scopes=scopes).post(
        preview_url(requesting_sp), body, format="json"
    )
    assert answer.status_code == status, answer.content
    assert answer.json()["status"] == status and answer.json()["hint"]


def test_the_api_preview_of_an_unknown_sp_is_404(demo):
    answer = api_as(*PREVIEWER).post(
        "/api/v1/service-providers/urn%3Anobody/preview", {"username": "alice"}, format="json"
    )
    assert answer.status_code == 404 and answer.json()["status"] == 404
