"""The ID-token preview: the function the API's preview endpoint answers with, and the admin
page on top of it (its permissions, its hostile inputs), and the claim-rule admin form."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import cache, keys
from idp.models import ClaimRule, SigningKey
from idp.oidc import jwks
from idp.oidc.models import Client
from idp.oidc.preview import id_token_preview
from idp.saml.errors import SamlError
from users.models import User

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
TAGS = r"https://aws\.amazon\.com/tags"
PREVIEW = "/admin/idp/claimrule/id-token-preview/"


@pytest.fixture
def jwt_key(signing_key):
    key, _ = keys.ensure_active_key(SigningKey.Use.JWT)
    return key


@pytest.fixture
def app(demo, jwt_key):
    client = Client.objects.create(
        name="App",
        client_id="app",
        client_type="public",
        redirect_uris="http://127.0.0.1/cb",
        allowed_scopes=["openid", "profile", "email", "groups"],
    )
    rule = ClaimRule(
        emits="jwt",
        oidc_client=client,
        source="attribute",
        source_attribute="attr.department",
        attribute_name=TAGS + ".principal_tags.Department",
        claim_type="list",
    )
    rule.full_clean()
    rule.save()
    return client


def alice() -> User:
    return User.objects.get(username="alice")


def staff(*perms: str) -> User:
    user = User.objects.create_user("operator", password="x", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


# --- the preview function (what the API's preview endpoint answers) ---------------------


def test_the_preview_is_a_token_that_verifies_against_the_jwks(app):
    preview = id_token_preview(alice(), app, NOW)
    assert preview.header["kid"] == jwks.signing_jwk()[1]
    assert preview.header["alg"] == "RS256"
    decoded = jwt.decode(preview.token, KeySet.import_key_set(jwks.public_set()))
    assert decoded.claims == preview.claims
    claims = preview.claims
    assert claims["sub"] == "alice" and claims["aud"] == "app"
    assert claims["iss"] == jwks.issuer()
    assert claims["iat"] == int(NOW.timestamp()) and claims["exp"] > claims["iat"]
    assert claims["https://aws.amazon.com/tags"] == {
        "principal_tags": {"Department": ["Engineering"]}
    }
    assert claims["email"] == "alice@example.com" and "Engineering" in claims["groups"]
    (outcome,) = preview.trace
    assert outcome.applied and outcome.values == ("Engineering",)


def test_the_preview_of_a_broken_rule_is_a_409(app):
    ClaimRule.objects.bulk_create(
        [
            ClaimRule(
                emits="jwt",
                oidc_client=app,
                source="literal",
                value="v",
                attribute_name=TAGS,  # a value where the rule above needs an object
            )
        ]
    )
    cache.forget()
    with pytest.raises(SamlError) as error:
        id_token_preview(alice(), app, NOW)
    assert error.value.status == 409


# --- the admin page -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("perms", "status"),
    [
        (("idp.preview_signed_response", "oidc.view_client"), 200),
        (("idp.preview_signed_response",), 403),  # no view permission on clients
        (("oidc.view_client", "idp.view_claimrule"), 403),  # it signs: the preview permission
        ((), 403),
    ],
)
def test_the_admin_preview_checks_its_permissions(client, app, perms, status):
    client.force_login(staff(*perms))
    response = client.get(PREVIEW, {"client": app.pk, "user": alice().pk})
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert jwks.signing_jwk()[1] in page  # the header's kid
        assert "principal_tags" in page and "Engineering" in page
        assert TAGS in page  # the rule's claim name, in the trace
        assert id_token_preview(alice(), app, NOW).token.split(".")[0] in page  # same header


def test_the_changelist_offers_the_preview_only_with_the_permissions(client, app):
    client.force_login(staff("idp.view_claimrule", "oidc.view_client"))
    assert PREVIEW not in client.get("/admin/idp/claimrule/").content.decode()
    client.force_login(User.objects.create_superuser("root", password="x"))
    assert PREVIEW in client.get("/admin/idp/claimrule/").content.decode()


@pytest.mark.parametrize(
    "query",
    [{"client": "999999", "user": "1"}, {"client": "x\x00", "user": "🙂"}, {"client": "a" * 5000}],
)
def test_hostile_preview_queries_are_form_errors_not_500s(client, app, query):
    client.force_login(User.objects.create_superuser("root", password="x"))
    response = client.get(PREVIEW, query)
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()


def test_the_admin_form_saves_a_jwt_rule_and_refuses_a_reserved_claim(client, app):
    client.force_login(User.objects.create_superuser("root", password="x"))
    form = {
        "emits": "jwt",
        "claim_type": "boolean",
        "oidc_client": app.pk,
        "order": 5,
        "enabled": "on",
        "condition": "member_of",
        "condition_subject": "Engineering",
        "source": "literal",
        "value": "true",
        "attribute_name": "engineer",
        "name_format": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
    }
    response = client.post("/admin/idp/claimrule/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ClaimRule.objects.get(attribute_name="engineer").oidc_client == app
    response = client.post("/admin/idp/claimrule/add/", {**form, "attribute_name": "sub"})
    assert response.status_code == 200
    assert "registered claim" in response.content.decode()
