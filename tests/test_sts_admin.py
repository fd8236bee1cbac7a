"""The admin pages of the local IAM and STS, the STS refusals in the audit admin, and the
pruning of expired credentials."""

import datetime
import json
import urllib.parse

import pytest
from django.contrib.auth.models import Permission
from django.utils.html import escape

from idp import clock, identity, watcher
from idp.models import AuditEvent
from idp.saml import signing
from idp.saml.metadata import idp_metadata
from idp.sts import state
from idp.sts.models import IamGeneration, IssuedCredential, Role, SamlProvider
from users.models import User

ACCOUNT = "123456789012"
PROVIDERS = "/admin/sts/samlprovider/"
ROLES = "/admin/sts/role/"
CREDENTIALS = "/admin/sts/issuedcredential/"
NOW = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.UTC)


def trust(provider: str = f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider},
                    "Action": "sts:AssumeRoleWithSAML",
                    "Condition": {
                        "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}
                    },
                }
            ],
        }
    )


@pytest.fixture(autouse=True)
def fresh_state():
    state.forget()
    yield
    state.forget()


@pytest.fixture
def metadata(signing_key) -> str:
    return identity.metadata_xml().decode()


@pytest.fixture
def root(client, db):
    client.force_login(User.objects.create_superuser("admin", password="x"))
    return client


def staff(client, *codenames: str):
    user = User.objects.create_user("operator", password="x", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="sts", codename=codename)
        )
    client.force_login(user)
    return client


def many_certificates(count: int, key_pems) -> str:
    cert = key_pems[1].decode() if isinstance(key_pems[1], bytes) else key_pems[1]
    return idp_metadata("https://idp.example/", "https://idp.example/sso", [cert] * count).decode()


def form_errors(response) -> str:
    assert response.status_code == 200, response.status_code  # the form again, not a redirect
    return " ".join(
        str(error)
        for errors in response.context["adminform"].form.errors.values()
        for error in errors
    )


# --- SAML providers -------------------------------------------------------------------


def test_provider_pages_show_arn_entity_id_and_fingerprints(root, metadata, key_pems):
    state.create_provider(ACCOUNT, "fedmock", metadata, NOW)
    row = SamlProvider.objects.get(account_id=ACCOUNT, name="fedmock")
    listing = root.get(PROVIDERS).content.decode()
    assert f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock" in listing
    assert identity.entity_id() in listing
    page = root.get(f"{PROVIDERS}{row.pk}/change/").content.decode()
    cert = key_pems[1].decode() if isinstance(key_pems[1], bytes) else key_pems[1]
    assert f"<code>{signing.fingerprint(cert)}</code>" in page
    assert "--endpoint-url" in page  # where else the same change can be made


def test_pending_snapshot_is_named_not_parsed(root, db):
    SamlProvider.objects.create(account_id=ACCOUNT, name="later", metadata="", created_at=NOW)
    assert "taken at first use" in root.get(PROVIDERS).content.decode()


def test_adding_a_provider_goes_through_iam_and_bumps_the_generation(root, metadata):
    before = IamGeneration.current()
    response = root.post(
        f"{PROVIDERS}add/", {"account_id": ACCOUNT, "name": "okta", "metadata": metadata}
    )
    assert response.status_code == 302, form_errors(response)
    assert IamGeneration.current() > before
    # moto's backend of the account now holds it: the door would answer with it.
    assert [p.name for p in state.list_providers(ACCOUNT)] == ["okta"]


PROVIDER_REFUSALS = [
    ("short metadata", {"metadata": "<x/>"}, "greater than or equal to 1000"),
    ("byte-order mark", {"metadata": "\ufeff{metadata}"}, "byte-order mark"),
    ("not metadata", {"metadata": "<a>" + "x" * 1200 + "</a>"}, "InvalidInput"),
    ("eleven keys", {"metadata": "{eleven}"}, "LimitExceeded"),
    ("bad name", {"name": "a b"}, "regular expression"),
    ("bad account", {"account_id": "12345"}, "12 digits"),
    ("taken name", {"name": "taken"}, "already exists"),
]


@pytest.mark.parametrize(
    ("change", "why"),
    [case[1:] for case in PROVIDER_REFUSALS],
    ids=[case[0] for case in PROVIDER_REFUSALS],
)
def test_adding_a_provider_iam_would_refuse_is_refused(root, metadata, key_pems, change, why):
    state.create_provider(ACCOUNT, "taken", metadata, NOW)
    before = (IamGeneration.current(), SamlProvider.objects.count())
    data = {"account_id": ACCOUNT, "name": "okta", "metadata": metadata, **change}
    data["metadata"] = data["metadata"].format(
        metadata=metadata, eleven=many_certificates(11, key_pems)
    )
    assert why in form_errors(root.post(f"{PROVIDERS}add/", data))
    assert (IamGeneration.current(), SamlProvider.objects.count()) == before


def test_changing_a_provider_updates_only_its_metadata(root, metadata, key_pems):
    state.create_provider(ACCOUNT, "fedmock", metadata, NOW)
    row = SamlProvider.objects.get()
    other = many_certificates(2, key_pems)
    before = IamGeneration.current()
    url = f"{PROVIDERS}{row.pk}/change/"
    bad = root.post(url, {"account_id": "999999999999", "name": "x", "metadata": "<x/>"})
    assert "greater than or equal to 1000" in form_errors(bad)
    assert IamGeneration.current() == before
    response = root.post(url, {"account_id": "999999999999", "name": "renamed", "metadata": other})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.account_id, row.name, row.metadata) == (ACCOUNT, "fedmock", other)
    assert IamGeneration.current() > before
    assert state.get_provider(row.arn).saml_metadata_document == other


def test_deleting_providers_one_or_many_bumps_the_generation(root, metadata):
    for name in ("a", "b", "c"):
        state.create_provider(ACCOUNT, name, metadata, NOW)
    first = SamlProvider.objects.get(name="a")
    before = IamGeneration.current()
    assert root.post(f"{PROVIDERS}{first.pk}/delete/", {"post": "yes"}).status_code == 302
    assert IamGeneration.current() > before
    before = IamGeneration.current()
    selected = list(SamlProvider.objects.values_list("pk", flat=True))
    root.post(PROVIDERS, {"action": "delete_selected", "_selected_action": selected, "post": "yes"})
    assert not SamlProvider.objects.exists()
    assert IamGeneration.current() > before
    assert state.list_providers(ACCOUNT) == []


# --- roles ----------------------------------------------------------------------------


def role_data(**change) -> dict:
    return {
        "account_id": ACCOUNT,
        "name": "Admin",
        "path": "/",
        "max_session_duration": 3600,
        "description": "",
        "trust_policy": trust(),
        **change,
    }


def test_adding_a_role_and_its_formatted_trust_policy(root):
    before = IamGeneration.current()
    response = root.post(f"{ROLES}add/", role_data(path="/team/"))
    assert response.status_code == 302, form_errors(response)
    row = Role.objects.get()
    assert row.role_id.startswith("AROA") and IamGeneration.current() > before
    assert state.get_role(ACCOUNT, "Admin").arn == f"arn:aws:iam::{ACCOUNT}:role/team/Admin"
    page = root.get(f"{ROLES}{row.pk}/change/").content.decode()
    assert escape(json.dumps(json.loads(trust()), indent=2)) in page
    assert f"arn:aws:iam::{ACCOUNT}:role/team/Admin" in root.get(ROLES).content.decode()


ROLE_REFUSALS = [
    ("malformed policy", {"trust_policy": "{not json"}, "MalformedPolicyDocument"),
    (
        "policy without statements",
        {"trust_policy": '{"Version": "2012-10-17"}'},
        "MalformedPolicyDocument",
    ),
    ("too short a session", {"max_session_duration": 900}, "greater than or equal to 3600"),
    ("too long a session", {"max_session_duration": 43201}, "less than or equal to 43200"),
    ("bad name", {"name": "a b"}, "regular expression"),
    ("bad path", {"path": "team"}, "regular expression"),
    ("name taken, other case", {"name": "admin"}, "EntityAlreadyExists"),
    ("bad account", {"account_id": "abc"}, "12 digits"),
]


@pytest.mark.parametrize(
    ("change", "why"), [case[1:] for case in ROLE_REFUSALS], ids=[case[0] for case in ROLE_REFUSALS]
)
def test_adding_a_role_iam_would_refuse_is_refused(root, change, why):
    state.create_role(ACCOUNT, "ADMIN", trust(), NOW)
    before = (IamGeneration.current(), Role.objects.count())
    assert why in form_errors(root.post(f"{ROLES}add/", role_data(**change)))
    assert (IamGeneration.current(), Role.objects.count()) == before


def test_changing_a_role_checks_the_policy_and_keeps_its_name(root):
    state.create_role(ACCOUNT, "Admin", trust(), NOW)
    row = Role.objects.get()
    url = f"{ROLES}{row.pk}/change/"
    before = IamGeneration.current()
    bad = root.post(url, role_data(trust_policy='{"Statement": 1}'))
    assert "MalformedPolicyDocument" in form_errors(bad)
    assert IamGeneration.current() == before
    new_trust = trust("arn:aws:iam::123456789012:saml-provider/okta")
    changed = role_data(
        name="Renamed", path="/x/", max_session_duration=7200, trust_policy=new_trust
    )
    assert root.post(url, changed).status_code == 302
    row.refresh_from_db()
    assert (row.name, row.path, row.max_session_duration, row.trust_policy) == (
        "Admin",
        "/",
        7200,
        new_trust,
    )
    assert IamGeneration.current() > before
    moto_role = state.get_role(ACCOUNT, "Admin")
    assert int(moto_role.max_session_duration) == 7200
    assert "okta" in json.dumps(moto_role.assume_role_policy_document)


# --- permissions ----------------------------------------------------------------------


@pytest.mark.parametrize("base", [PROVIDERS, ROLES, CREDENTIALS])
def test_staff_without_permissions_see_nothing(client, db, base):
    staff(client)
    assert client.get(base).status_code == 403


def test_view_permission_views_but_changes_nothing(client, metadata):
    state.create_provider(ACCOUNT, "fedmock", metadata, NOW)
    state.create_role(ACCOUNT, "Admin", trust(), NOW)
    staff(client, "view_samlprovider", "view_role")
    provider, role = SamlProvider.objects.get(), Role.objects.get()
    before = IamGeneration.current()
    assert client.get(PROVIDERS).status_code == 200
    assert client.get(f"{PROVIDERS}add/").status_code == 403
    assert (
        client.post(f"{PROVIDERS}{provider.pk}/change/", {"metadata": "<x/>" * 300}).status_code
        == 403
    )
    assert client.post(f"{PROVIDERS}{provider.pk}/delete/", {"post": "yes"}).status_code == 403
    assert (
        client.post(f"{ROLES}{role.pk}/change/", role_data(max_session_duration=7200)).status_code
        == 403
    )
    assert client.post(f"{ROLES}{role.pk}/delete/", {"post": "yes"}).status_code == 403
    assert IamGeneration.current() == before
    assert Role.objects.get().max_session_duration == 3600 and SamlProvider.objects.exists()


def test_change_permission_changes_but_does_not_delete(client, db):
    state.create_role(ACCOUNT, "Admin", trust(), NOW)
    role = Role.objects.get()
    staff(client, "change_role")
    assert (
        client.post(f"{ROLES}{role.pk}/change/", role_data(max_session_duration=7200)).status_code
        == 302
    )
    assert client.post(f"{ROLES}{role.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Role.objects.get().max_session_duration == 7200


# --- issued credentials ---------------------------------------------------------------


@pytest.fixture
def issued(db) -> IssuedCredential:
    """Real credentials from the local STS for a role, expiring an hour from the IdP's now."""
    state.create_role(ACCOUNT, "Admin", trust(), NOW, path="/team/")
    return state.issue_role_session(
        Role.objects.get(), "alice@example.com", 3600, clock.now(), action="AssumeRoleWithSAML"
    )


def test_credential_pages_never_show_the_secret_or_the_token(root, issued):
    pages = {
        "list": root.get(CREDENTIALS),
        "search": root.get(CREDENTIALS, {"q": issued.access_key_id}),
        "view": root.get(f"{CREDENTIALS}{issued.pk}/change/"),
        "delete": root.get(f"{CREDENTIALS}{issued.pk}/delete/"),
        "history": root.get(f"{CREDENTIALS}{issued.pk}/history/"),
    }
    for name, response in pages.items():
        html = response.content.decode()
        assert response.status_code == 200, name
        assert issued.secret_access_key not in html, name
        assert issued.session_token not in html and escape(issued.session_token) not in html, name
    view = pages["view"].content.decode()
    assert issued.access_key_id in view and issued.arn in view
    assert f"arn:aws:iam::{ACCOUNT}:role/team/Admin" in view  # the role, with its path
    assert issued.access_key_id in pages["search"].content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "q={secret}",
        "secret_access_key={secret}",
        "secret_access_key__startswith={first}",
        "session_token__contains={token_part}",
    ],
)
def test_no_url_reads_a_secret_out(root, issued, query):
    """A filter on the secret would tell, row by row, whether a guess of its start is right."""
    url = (
        CREDENTIALS
        + "?"
        + query.format(
            secret=urllib.parse.quote(issued.secret_access_key),
            first=urllib.parse.quote(issued.secret_access_key[:1]),
            token_part=urllib.parse.quote(issued.session_token[:8]),
        )
    )
    response = root.get(url)
    assert issued.access_key_id not in response.content.decode() or response.status_code != 200


def test_status_follows_the_idp_clock(root, issued, settings):
    valid = root.get(CREDENTIALS, {"status": "valid"}).content.decode()
    assert issued.access_key_id in valid and ">valid<" in valid
    assert issued.access_key_id not in root.get(CREDENTIALS, {"status": "expired"}).content.decode()
    settings.IDP_CLOCK_OFFSET = 2 * 3600
    expired = root.get(CREDENTIALS, {"status": "expired"}).content.decode()
    assert issued.access_key_id in expired and ">expired<" in expired
    assert issued.access_key_id not in root.get(CREDENTIALS, {"status": "valid"}).content.decode()


def test_credentials_cannot_be_added_or_changed_and_deleting_revokes(client, issued):
    staff(client, "view_issuedcredential", "delete_issuedcredential")
    assert client.get(f"{CREDENTIALS}add/").status_code == 403
    assert client.post(f"{CREDENTIALS}{issued.pk}/change/", {"arn": "x"}).status_code == 403
    assert client.post(f"{CREDENTIALS}{issued.pk}/delete/", {"post": "yes"}).status_code == 302
    assert state.caller_for_key(issued.access_key_id) is None


# --- the audit admin ------------------------------------------------------------------


def test_an_sts_refusal_and_its_explanation_are_in_the_audit_admin(root, db):
    response = root.post(
        "/aws/",
        urllib.parse.urlencode(
            {
                "Action": "AssumeRoleWithSAML",
                "Version": "2011-06-15",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/Admin",
                "PrincipalArn": f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock",
                "SAMLAssertion": "bm90IGEgU0FNTCByZXNwb25zZQ" * 4,
            }
        ),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code >= 400
    event = AuditEvent.objects.get(flow="sts")
    code_line, *explanation = event.detail.splitlines()
    assert event.outcome == AuditEvent.Outcome.REFUSED and explanation

    listing = root.get("/admin/idp/auditevent/", {"flow": "sts"}).content.decode()
    assert "?flow=sts" in listing  # the filter offers the STS flow
    assert escape(code_line) in listing
    page = root.get(f"/admin/idp/auditevent/{event.pk}/change/").content.decode()
    for line in explanation:
        assert escape(line) in page
    found = root.get("/admin/idp/auditevent/", {"q": explanation[-1][:40]}).content.decode()
    assert f"/admin/idp/auditevent/{event.pk}/change/" in found


# --- pruning --------------------------------------------------------------------------


def credential(name: str, expires_at: datetime.datetime) -> IssuedCredential:
    return IssuedCredential.objects.create(
        access_key_id=f"ASIA{name}",
        secret_access_key="s",
        session_token="t",
        account_id=ACCOUNT,
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/{name}",
        user_id="AROA:x",
        action="AssumeRoleWithSAML",
        issued_at=expires_at - datetime.timedelta(hours=1),
        expires_at=expires_at,
    )


def test_prune_deletes_only_credentials_expired_longer_than_the_margin(db):
    keep = state.KEEP_EXPIRED
    second = datetime.timedelta(seconds=1)
    for name, expires in {
        "VALID": NOW + second,
        "JUSTEXPIRED": NOW - second,
        "ATMARGIN": NOW - keep,
        "PASTMARGIN": NOW - keep - second,
        "LONGGONE": NOW - 30 * keep,
    }.items():
        credential(name, expires)
    assert state.prune_credentials(NOW) == 2
    assert sorted(IssuedCredential.objects.values_list("access_key_id", flat=True)) == [
        "ASIAATMARGIN",
        "ASIAJUSTEXPIRED",
        "ASIAVALID",
    ]
    assert state.prune_credentials(NOW) == 0


def test_the_watcher_prunes_them_by_the_idp_clock(db, settings, monkeypatch):
    monkeypatch.setattr(clock, "system_now", lambda: NOW)
    monkeypatch.setattr(watcher, "_last_prune", float("-inf"))
    credential("SOON", NOW + datetime.timedelta(hours=1))  # valid by the system clock
    settings.IDP_CLOCK_OFFSET = 0
    watcher.prune_expired()
    assert IssuedCredential.objects.count() == 1
    settings.IDP_CLOCK_OFFSET = 3 * 24 * 3600  # the IdP lives three days ahead
    monkeypatch.setattr(watcher, "_last_prune", float("-inf"))
    watcher.prune_expired()
    assert not IssuedCredential.objects.exists()
