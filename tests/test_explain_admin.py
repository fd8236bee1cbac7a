"""The admin's explainer page (idp/sts/explain_admin.py): the commands' answer, as HTML.

The page must say what `explain_web_identity` / `explain_saml` say for the same inputs
(it prints their lines verbatim, and the table below compares them), take a local role's
trust policy, check `sts.view_role` and CSRF, cap every input, and answer any garbage
with a message, never a 500.
"""

import base64
import html
import io
import json
import random
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from joserfc.jwk import KeySet

from idp import clock, identity, keys, sso
from idp.models import SigningKey
from idp.oidc import issue, tokens
from idp.saml import aws
from idp.sts import explain_admin, state
from idp.sts.models import Role
from tests.test_explain import (
    CASES,
    COGNITO,
    GH,
    KEY,
    MAIN,
    OTHER_KEY,
    github,
    saml_policy,
    token,
    untagged,
)
from users.models import User

PAGE = "/admin/sts/role/explain/"
ROLES = "/admin/sts/role/"
ACCOUNT = "111122223333"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"


@pytest.fixture(autouse=True)
def fresh_state():
    state.forget()
    yield
    state.forget()


def local_role(name: str, policy: dict) -> Role:
    state.create_role(ACCOUNT, name, json.dumps(policy), clock.now())
    return Role.objects.get(account_id=ACCOUNT, name=name)


def operator(client, *codenames: str) -> Client:
    user = User.objects.create_user("operator", password="x", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="sts", codename=codename)
        )
    client.force_login(user)
    return client


@pytest.fixture
def viewer(client, db):
    return operator(client, "view_role")


def answer(client, **fields) -> str:
    response = client.post(PAGE, fields)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def printed(page: str) -> str:
    """The page's "as the command prints it" block, unescaped."""
    found = re.search(r"<pre>(.*?)</pre>", page, re.S)
    assert found, page
    return html.unescape(found.group(1))


def problem(page: str) -> str:
    found = re.search(r'<p class="errornote" id="explain-problem">(.*?)</p>', page, re.S)
    return html.unescape(found.group(1)) if found else ""


def field_errors(page: str) -> str:
    return html.unescape(" ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page)))


def command(name: str, value: str, policy: dict, tmp_path, *options) -> str:
    (tmp_path / "p.json").write_text(json.dumps(policy))
    out = io.StringIO()
    try:
        call_command(name, value, "--trust-policy", str(tmp_path / "p.json"), *options, stdout=out)
    except SystemExit:
        pass
    return out.getvalue().rstrip("\n")


# --- permissions, CSRF, links -----------------------------------------------------------


@pytest.mark.parametrize(
    ("codenames", "status"),
    [
        ((), 403),  # staff status alone is not enough
        (("change_samlprovider", "view_issuedcredential"), 403),  # other sts permissions
        (("view_role",), 200),
    ],
)
def test_the_page_needs_view_role(client, db, codenames, status):
    operator(client, *codenames)
    assert client.get(PAGE).status_code == status
    assert client.post(PAGE, {"credential": token({}), "trust_policy": "{}"}).status_code == status


def test_anonymous_and_non_staff_go_to_the_login(client, db):
    assert client.get(PAGE).status_code == 302
    user = User.objects.create_user("tester", password="x")
    user.user_permissions.add(Permission.objects.get(codename="view_role"))
    client.force_login(user)
    assert client.get(PAGE).status_code == 302  # the admin's login: not staff


def test_a_post_without_the_csrf_token_is_refused(db):
    strict = operator(Client(enforce_csrf_checks=True), "view_role")
    page = strict.get(PAGE).content.decode()
    assert "csrfmiddlewaretoken" in page
    fields = {"credential": token({}), "trust_policy": json.dumps(github())}
    assert strict.post(PAGE, fields).status_code == 403
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert strict.post(PAGE, {**fields, "csrfmiddlewaretoken": csrf}).status_code == 200


def test_the_roles_pages_link_to_it_for_those_who_may(client, db):
    role = local_role("GitHub", github())
    operator(client, "view_role")
    assert PAGE in client.get(ROLES).content.decode()
    change = client.get(f"{ROLES}{role.pk}/change/").content.decode()
    assert f"{PAGE}?role={role.pk}" in change
    # The link preselects the role.
    assert (
        f'<option value="{role.pk}" selected>'
        in client.get(f"{PAGE}?role={role.pk}").content.decode()
    )


# --- the same answer as the commands ---------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "policy", "code", "fragments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_page_says_what_explain_web_identity_says(
    viewer, tmp_path, claims, policy, code, fragments
):
    provider = ""
    if claims.get("iss", "").endswith(COGNITO):
        provider = COGNITO
    elif "google" in claims.get("iss", ""):
        provider = "accounts.google.com"
    value = token(claims)
    page = answer(viewer, credential=value, trust_policy=json.dumps(policy), provider_arn=provider)
    options = ["--provider-arn", provider] if provider else []
    assert printed(page) == command("explain_web_identity", value, policy, tmp_path, *options)
    assert "Read as a JWT" in page
    assert ("ALLOWED" if code == 0 else "DENIED (") in page
    for fragment in fragments:
        assert fragment in html.unescape(page), fragment


def test_the_failing_condition_and_both_values_are_in_the_html(viewer):
    page = answer(
        viewer,
        credential=token({"sub": "repo:acme/app:pull_request"}),
        trust_policy=json.dumps(github()),
    )
    why = html.unescape(re.search(r'<ul class="why">(.*?)</ul>', page, re.S).group(1))
    assert "repo:acme/app:ref:refs/heads/*" in why and "repo:acme/app:pull_request" in why
    rows = html.unescape(page)
    assert f'<td><code>{GH}:sub</code></td><td><code>"repo:acme/app:pull_request"' in rows


def test_a_local_role_gives_the_trust_policy(viewer):
    role = local_role("GitHub", github())
    pr = token({"sub": "repo:acme/app:pull_request"})
    assert "ALLOWED" in printed(answer(viewer, credential=token({}), role=role.pk))
    assert "DENIED" in printed(answer(viewer, credential=pr, role=role.pk))
    both = answer(viewer, credential=pr, role=role.pk, trust_policy=json.dumps(github()))
    assert "not both" in field_errors(both) and "<pre>" not in both
    missing = answer(viewer, credential=pr)
    assert "pick a local IAM role" in field_errors(missing)
    unknown = answer(viewer, credential=pr, role=10**6)
    assert "Select a valid choice" in field_errors(unknown)


def test_the_signature_with_a_pasted_jwks(viewer):
    jwks = json.dumps(KeySet([KEY]).as_dict(private=False))
    page = answer(viewer, credential=token({}), trust_policy=json.dumps(github()), jwks=jwks)
    assert "signature verified against the pasted JWKS" in printed(page)
    forged = token({}, OTHER_KEY)
    page = answer(viewer, credential=forged, trust_policy=json.dumps(github()), jwks=jwks)
    assert "not a valid JWT" in problem(page) and "<pre>" not in page


@pytest.mark.django_db(transaction=True)
def test_the_signature_with_a_jwks_url(client, idp_url):
    """fedmock's own /oidc/jwks over HTTP, fetched as the command fetches a URL."""
    operator(client, "view_role")
    keys.ensure_active_key(SigningKey.Use.JWT)
    minted = issue.issue(preset="github", options=tokens.Options(repo="acme/app"))
    issuer = minted.claims["iss"].removeprefix("http://").removeprefix("https://")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{issuer}:sub": MAIN}},
            }
        ],
    }
    url = f"{idp_url}/oidc/jwks"
    page = answer(client, credential=minted.token, trust_policy=json.dumps(policy), jwks=url)
    assert f"signature verified against {url}" in printed(page) and "ALLOWED" in printed(page)
    nowhere = answer(
        client, credential=minted.token, trust_policy=json.dumps(policy), jwks=f"{idp_url}/nope"
    )
    assert "Cannot fetch the JWKS" in problem(nowhere) and "HTTP 404" in problem(nowhere)


@pytest.fixture
def frozen_clock(monkeypatch):
    """The command and the page each read the clock for aws:CurrentTime: a second's tick
    between them made the two answers differ (a test racing the clock)."""
    moment = clock.system_now().replace(microsecond=0)
    monkeypatch.setattr(clock, "system_now", lambda: moment)
    return moment


@pytest.fixture
def saml_response(demo, frozen_clock):
    return sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, now=clock.now()).saml_response


SAML_CASES = [
    ("allowed", saml_policy({"StringEquals": {"SAML:aud": aws.SIGNIN_ACS}}), "ALLOWED"),
    ("another audience", saml_policy({"StringEquals": {"SAML:aud": "https://x/saml"}}), "DENIED"),
    ("tags need TagSession", saml_policy({}, ["sts:AssumeRoleWithSAML"]), "DENIED: sts:TagSession"),
]


@pytest.mark.parametrize(
    ("policy", "verdict"), [c[1:] for c in SAML_CASES], ids=[c[0] for c in SAML_CASES]
)
def test_the_page_says_what_explain_saml_says(viewer, saml_response, tmp_path, policy, verdict):
    (tmp_path / "r").write_text(saml_response)
    said = command("explain_saml", str(tmp_path / "r"), policy, tmp_path)
    for pasted in (saml_response, base64.b64decode(saml_response).decode()):  # base64 or XML
        page = answer(viewer, credential=pasted, trust_policy=json.dumps(policy))
        assert "Read as a SAMLResponse" in page
        assert printed(page) == said and verdict in said


def test_saml_with_pasted_metadata_validates_fully(viewer, saml_response):
    policy = json.dumps(saml_policy({}))
    metadata = identity.metadata_xml().decode()
    page = answer(viewer, credential=saml_response, trust_policy=policy, metadata=metadata)
    assert "checked against the pasted metadata" in printed(page)
    changed = untagged(saml_response).decode()
    page = answer(viewer, credential=changed, trust_policy=policy, metadata=metadata)
    assert "Response signature invalid" in problem(page)


def test_saml_role_arn_comes_from_the_picked_role(viewer, saml_response):
    role = Role.objects.get(account_id=ACCOUNT, name="Admin")  # the demo's, with its policy
    assert role.arn == ADMIN
    page = answer(viewer, credential=saml_response, role=role.pk)
    assert "ALLOWED" in printed(page)
    other = local_role("Other", saml_policy({}))
    page = answer(viewer, credential=saml_response, role=other.pk)
    assert "the assertion offers" in problem(page) and ADMIN in problem(page)


# --- caps and garbage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("credential", explain_admin.CREDENTIAL_MAX),
        ("trust_policy", explain_admin.POLICY_MAX),
        ("jwks", explain_admin.JWKS_MAX),
        ("metadata", explain_admin.METADATA_MAX),
        ("provider_arn", explain_admin.ARN_MAX),
        ("role_arn", explain_admin.ARN_MAX),
    ],
)
def test_each_field_is_capped(viewer, field, limit):
    fields = {"credential": token({}), "trust_policy": json.dumps(github())}
    at_limit = answer(viewer, **{**fields, field: "x" * limit})
    assert "at most" not in field_errors(at_limit)
    over = answer(viewer, **{**fields, field: "x" * (limit + 1)})
    assert "<pre>" not in over
    assert f"at most {limit} characters (it has {limit + 1})" in field_errors(over)


def test_a_token_longer_than_the_sts_takes(viewer):
    page = answer(viewer, credential="a." + "b" * 20_000 + ".c", trust_policy=json.dumps(github()))
    assert "STS takes at most 20000" in problem(page)


TAGS = "https://aws.amazon.com/tags"
JWT_HEADER = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"k1"}').rstrip(b"=").decode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


GARBAGE = [
    "a.b.c",
    "....",
    ".",
    "..",
    f"{JWT_HEADER}.{b64(b'[]')}.",
    f"{JWT_HEADER}.{b64(b'null')}.",
    f"{JWT_HEADER}.{b64(b'{}')}.",
    f"{JWT_HEADER}.{b64(json.dumps({'iss': 7}).encode())}.",
    f"{JWT_HEADER}.{b64(json.dumps({'iss': 'x', 'sub': {'a': 1}, 'aud': [1, None]}).encode())}.",
    f"{JWT_HEADER}.{b64(json.dumps({'iss': 'https://', TAGS: 5}).encode())}.",
    f"{b64(b'not json')}.{b64(b'{}')}.sig",
    "<",
    "<x/>",
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
    "PHNvbWV0aGluZz4=",
    "====",
    "\u00e9\u00e9\u00e9",
    "\ud7ff" * 10,
    "jwt.\u2603.x",
]
POLICIES = [
    json.dumps(github()),
    "",
    "{",
    "[]",
    "null",
    '{"Statement": "x"}',
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*"}]}',
    json.dumps(github("StringLike", "*" * 60)),
    "\u2603",
]
JWKS = ["", "{", "[]", '{"keys": 5}', '{"keys": [{"kty": "RSA"}]}', "http://", "https://[::1"]


def test_garbage_never_makes_a_500(viewer):
    """Every pairing of the tables, then seeded random bytes: a message, never an error."""
    rng = random.Random(11)
    inputs = [(c, p, j) for c in GARBAGE for p in POLICIES[:4] for j in JWKS[:2]]
    inputs += [(token({}), p, j) for p in POLICIES for j in JWKS]
    for _ in range(150):
        noise = "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x3000)]))
            for _ in range(rng.randrange(1, 200))
        )
        inputs.append(
            (
                rng.choice([noise, noise.replace(" ", "."), "<" + noise]),
                rng.choice(POLICIES),
                rng.choice(JWKS),
            )
        )
    for credential, policy, jwks in inputs:
        page = answer(viewer, credential=credential, trust_policy=policy, jwks=jwks)
        assert problem(page) or field_errors(page) or "<pre>" in page, (credential, policy, jwks)
        assert "\n" not in problem(page)


def test_a_nul_is_a_field_error(viewer):
    page = answer(viewer, credential=token({}) + "\x00", trust_policy=json.dumps(github()))
    assert "Null characters are not allowed" in field_errors(page)  # Django's own check
