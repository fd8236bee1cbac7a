"""The OIDC client admin: register with checkboxes and one redirect URI per line; the
secret is shown once, on the page that answers the form, and works at the token endpoint."""

import base64
import re

import pytest
from django.contrib.auth.hashers import check_password

from idp import keys
from idp.models import SigningKey
from idp.oidc.models import Client
from users.models import User

ADD = "/admin/oidc/client/add/"
GRAFANA = "https://grafana.example/login/generic_oauth"


@pytest.fixture
def operator(client, db):
    keys.ensure_active_key(SigningKey.Use.JWT)
    client.force_login(User.objects.create_superuser("root", password="x"))
    return client


def form(**fields) -> dict:
    return {
        "name": "Grafana",
        "client_id": "grafana",
        "client_type": "confidential",
        "grant_types": ["authorization-code", "client-credentials"],
        "allowed_scopes": ["openid", "email"],
        "redirect_uris": f"{GRAFANA}\r\n\r\n  https://b.example/cb ",
        "post_logout_redirect_uris": "",
        "allowed_origins": "",
        "user": "",
        **fields,
    }


def test_the_add_page_shows_checkboxes_and_no_secret_field(operator):
    page = operator.get(ADD).content.decode()
    assert page.count('type="checkbox" name="grant_types"') == 2
    assert page.count('type="checkbox" name="allowed_scopes"') == 4
    assert 'name="client_secret"' not in page and "One per line" in page


def test_registering_shows_the_secret_once_and_it_works(operator):
    answer = operator.post(ADD, form())
    assert answer.status_code == 200, answer.content[:2000]
    secret = re.search(r'data-testid="client-secret">([^<]+)<', answer.content.decode()).group(1)
    made = Client.objects.get(client_id="grafana")
    assert secret not in made.client_secret and check_password(secret, made.client_secret)
    assert made.redirect_uris == f"{GRAFANA}\nhttps://b.example/cb"
    assert made.grant_types == ["authorization-code", "client-credentials"]
    assert made.allowed_scopes == ["openid", "email"] and made.algorithm == "RS256"
    change = operator.get(f"/admin/oidc/client/{made.pk}/change/").content.decode()
    assert secret not in change
    basic = base64.b64encode(f"grafana:{secret}".encode()).decode()
    token = operator.post(
        "/oidc/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION="Basic " + basic
    )
    assert token.status_code == 200, token.content


def test_a_public_client_is_told_it_has_no_secret(operator):
    answer = operator.post(ADD, form(client_type="public", grant_types=["authorization-code"]))
    assert answer.status_code == 200
    assert b"PKCE alone" in answer.content and b"client-secret" not in answer.content


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"grant_types": []}, "This field is required"),
        ({"allowed_scopes": ["admin"]}, "Select a valid choice"),
        ({"grant_types": ["implicit"]}, "Select a valid choice"),
        ({"redirect_uris": ""}, "redirect"),
    ],
)
def test_bad_registrations_are_refused_on_the_form(operator, fields, says):
    answer = operator.post(ADD, form(**fields))
    assert answer.status_code == 200 and says in answer.content.decode()
    assert not Client.objects.exists()


def test_a_client_id_cannot_be_renamed_in_the_admin(operator):
    operator.post(ADD, form())
    made = Client.objects.get(client_id="grafana")
    change = f"/admin/oidc/client/{made.pk}/change/"
    assert 'name="client_id"' not in operator.get(change).content.decode()
    answer = operator.post(change, form(client_id="renamed"))
    assert answer.status_code == 302, answer.content[:2000]
    assert Client.objects.filter(client_id="grafana").exists()
    assert not Client.objects.filter(client_id="renamed").exists()
