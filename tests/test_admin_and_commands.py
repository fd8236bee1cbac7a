"""Operators' tools: the admin and the management commands that mirror it."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from lxml import etree

from idp.models import ServiceProvider, SigningKey
from idp.saml import constants as c
from idp.saml.metadata import parse_sp_metadata
from users.models import Group, User

SP_METADATA = f"""<md:EntityDescriptor xmlns:md="{c.MD}" entityID="https://app.example/saml">
  <md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}" WantAssertionsSigned="true">
    <md:NameIDFormat>{c.NAMEID_EMAIL}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{c.BINDING_POST}" Location="https://app.example/acs"
        index="0" isDefault="true"/>
    <md:AssertionConsumerService Binding="{c.BINDING_POST}" Location="https://app.example/acs2"
        index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"""


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_exact(db):
    run("seed_demo")
    run("seed_demo")
    alice = User.objects.get(username="alice")
    assert alice.email == "alice@example.com"
    assert alice.check_password("alice")
    assert alice.attribute_values() == {"costCenter": ["4711"], "department": ["Engineering"]}
    assert sorted(alice.directory_groups.values_list("name", flat=True)) == [
        "AWS-111122223333-Admin",
        "AWS-111122223333-ReadOnly",
        "AWS-444455556666-Developer",
        "Engineering",
    ]
    bob = User.objects.get(username="bob")
    assert sorted(bob.directory_groups.values_list("name", flat=True)) == [
        "AWS-111122223333-ReadOnly",
        "Finance",
    ]
    assert not User.objects.get(username="carol").directory_groups.exists()
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not admin.groups.exists()  # directory groups never grant admin rights
    assert Group.objects.count() == 5
    assert User.objects.count() == 4


def test_aws_preset_comes_from_the_migration(db):
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    assert sp.is_aws and sp.iam_provider_name == "fedmock"
    assert [e.location for e in sp.endpoints.all()] == ["https://signin.aws.amazon.com/saml"]
    assert [r.friendly_name for r in sp.rules.all()] == [
        "Role",
        "RoleSessionName",
        "SessionDuration",
        "PrincipalTag:department",
        "PrincipalTag:costCenter",
    ]


def test_import_sp_metadata_registers_then_updates(db, tmp_path):
    path = tmp_path / "sp.xml"
    path.write_text(SP_METADATA)
    assert "Registered https://app.example/saml" in run("import_sp_metadata", str(path))
    sp = ServiceProvider.objects.get(entity_id="https://app.example/saml")
    assert sp.nameid_format == c.NAMEID_EMAIL
    assert [e.location for e in sp.endpoints.all()] == [
        "https://app.example/acs",
        "https://app.example/acs2",
    ]
    path.write_text(SP_METADATA.replace("/acs2", "/acs-new"))
    assert "Updated" in run("import_sp_metadata", str(path))
    assert sp.endpoints.filter(location="https://app.example/acs-new").exists()
    assert ServiceProvider.objects.filter(entity_id="https://app.example/saml").count() == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not xml at all", "not well-formed"),
        (f'<md:EntityDescriptor xmlns:md="{c.MD}" entityID="x"/>', "no SPSSODescriptor"),
        ("<html/>", "not SAML metadata"),
        (SP_METADATA.replace('index="1"', 'index="0"'), "repeats an AssertionConsumerService"),
        (SP_METADATA.replace("https://app.example/acs2", "javascript:alert(1)"), "not an http"),
    ],
)
def test_import_sp_metadata_errors_are_one_clear_line(db, tmp_path, content, message):
    path = tmp_path / "bad.xml"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("import_sp_metadata", str(path))


def test_import_of_a_missing_file_is_a_command_error(db):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_sp_metadata", "/no/such/file.xml")


def test_export_metadata(db, signing_key, tmp_path):
    out = io.StringIO()
    call_command("export_metadata", stdout=out, stderr=io.StringIO())
    root = etree.fromstring(out.getvalue().encode())
    assert root.get("entityID") == "http://127.0.0.1:8000/saml/metadata/"
    run("export_metadata", "--output", str(tmp_path / "md.xml"))
    assert b"IDPSSODescriptor" in (tmp_path / "md.xml").read_bytes()


def test_export_metadata_without_key_explains(db):
    with pytest.raises(CommandError, match="ensure_signing_key"):
        run("export_metadata")


def test_ensure_signing_key_is_idempotent(db):
    assert "Generated" in run("ensure_signing_key")
    assert "Using" in run("ensure_signing_key")
    # One active key per use: SAML (metadata) and JWT (/oidc/jwks).
    assert SigningKey.objects.filter(state="active", use="saml").count() == 1
    assert SigningKey.objects.filter(state="active", use="jwt").count() == 1


def test_aws_sp_must_sign_the_assertion(db):
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    sp.sign_assertion = False
    with pytest.raises(ValidationError, match="R11"):
        sp.full_clean()


def test_sp_metadata_parser_reads_pysaml2_style_metadata():
    parsed = parse_sp_metadata(SP_METADATA.encode())
    assert parsed.entity_id == "https://app.example/saml"
    assert parsed.want_assertions_signed
    assert parsed.assertion_consumer_services[0].is_default


@pytest.fixture
def admin_client_demo(client, demo):
    client.login(username="admin", password="admin")
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/users/user/",
        "/admin/users/user/?q=alice",
        "/admin/users/group/",
        "/admin/idp/serviceprovider/",
        "/admin/idp/serviceprovider/import-metadata/",
        "/admin/idp/signingkey/",
        "/admin/idp/auditevent/",
    ],
)
def test_admin_pages_render(admin_client_demo, url):
    assert admin_client_demo.get(url).status_code == 200


def test_admin_change_pages_render(admin_client_demo):
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    alice = User.objects.get(username="alice")
    group = Group.objects.get(name="Engineering")
    for url in (
        f"/admin/idp/serviceprovider/{sp.pk}/change/",
        f"/admin/users/user/{alice.pk}/change/",
        f"/admin/users/group/{group.pk}/change/",
    ):
        response = admin_client_demo.get(url)
        assert response.status_code == 200, url


def test_admin_imports_pasted_metadata(admin_client_demo):
    response = admin_client_demo.post(
        "/admin/idp/serviceprovider/import-metadata/", {"metadata": SP_METADATA, "name": "App"}
    )
    assert response.status_code == 302
    assert ServiceProvider.objects.get(entity_id="https://app.example/saml").name == "App"


def test_admin_import_shows_what_is_wrong(admin_client_demo):
    response = admin_client_demo.post(
        "/admin/idp/serviceprovider/import-metadata/", {"metadata": "<nope"}
    )
    assert response.status_code == 200
    assert "not well-formed" in response.content.decode()


def test_metadata_that_demands_signed_requests_without_a_certificate(db, tmp_path):
    path = tmp_path / "sp.xml"
    path.write_text(
        SP_METADATA.replace('WantAssertionsSigned="true"', 'AuthnRequestsSigned="true"')
    )
    with pytest.raises(CommandError, match="require_signed_requests"):
        run("import_sp_metadata", str(path))


ACS_LINE = (
    f'<md:AssertionConsumerService Binding="{c.BINDING_POST}" '
    'Location="https://app.example/acs2"\n        index="1"/>'
)


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        (f'<md:AssertionConsumerService Binding="{c.BINDING_POST}" index="1"/>', "not an http"),
        ('<md:AssertionConsumerService Location="https://app.example/x" index="1"/>', "no Binding"),
        (ACS_LINE.replace('index="1"', 'index="abc"'), "not a number"),
        (ACS_LINE.replace('index="1"', 'index="-1"'), "not a number"),
        (ACS_LINE.replace("https://app.example/acs2", "https://exa mple/&lt;x&gt;"), "not an http"),
        (ACS_LINE + '<md:KeyDescriptor use="signing"/>', None),
        (
            ACS_LINE
            + '<md:KeyDescriptor><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
            "<ds:X509Data><ds:X509Certificate>!!!notbase64</ds:X509Certificate></ds:X509Data>"
            "</ds:KeyInfo></md:KeyDescriptor>",
            "cannot be read",
        ),
    ],
)
def test_odd_sp_metadata_never_crashes(db, tmp_path, replacement, message):
    path = tmp_path / "sp.xml"
    path.write_text(SP_METADATA.replace(ACS_LINE, replacement))
    if message is None:
        run("import_sp_metadata", str(path))
        return
    with pytest.raises(CommandError, match=message):
        run("import_sp_metadata", str(path))


def test_metadata_without_entity_id_is_refused(db, tmp_path):
    path = tmp_path / "sp.xml"
    path.write_text(SP_METADATA.replace('entityID="https://app.example/saml"', ""))
    with pytest.raises(CommandError, match="no usable entityID"):
        run("import_sp_metadata", str(path))
