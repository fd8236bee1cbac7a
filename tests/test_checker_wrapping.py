"""Item 3: the checker judges exactly what the signature covers, read as C14N reads it.

Every layout starts from a genuine fedmock response, signed for real. The evil
content goes where the signatures still verify: inside a ds:Signature (which
the enveloped transform leaves out) or, when only the Assertion is signed,
anywhere outside it. Each must be refused, with metadata and without.
"""

import base64
import copy
import io

import pytest
from django.core.management import CommandError, call_command
from lxml import etree

from idp.saml import aws, signing
from idp.saml import constants as c
from idp.saml.errors import SamlError

from .test_aws_checker import NOW, NS, ROLE, release, response

ISSUER = "https://idp.example/saml/metadata/"
EVIL_ROLE = ROLE.replace("role/Dev", "role/Admin")


@pytest.fixture(scope="module")
def key(key_pems):
    return signing.load_key(*key_pems)


def _ds(name: str) -> etree._Element:
    return etree.Element(f"{{{c.DS}}}{name}")


def evil_assertion(root: etree._Element) -> etree._Element:
    """An unsigned copy of the genuine Assertion, under another ID, with an admin role."""
    evil = copy.deepcopy(root.find("saml:Assertion", NS))
    evil.remove(evil.find("ds:Signature", NS))
    evil.set("ID", "_evil")
    for value in evil.iterfind(".//saml:AttributeValue", NS):
        if value.text == ROLE:
            value.text = EVIL_ROLE
    return evil


def evil_statement(root: etree._Element) -> etree._Element:
    return evil_assertion(root).find("saml:AttributeStatement", NS)


def evil_attribute(root: etree._Element) -> etree._Element:
    return evil_statement(root).find("saml:Attribute", NS)


def in_object(of: str, evil):
    """Put the evil content in a ds:Object of the Response's or the Assertion's signature."""

    def place(root):
        signed = root if of == "Response" else root.find("saml:Assertion", NS)
        thing = evil(root)
        obj = _ds("Object")
        obj.append(thing)
        signed.find("ds:Signature", NS).append(obj)

    return place


def in_key_info(of: str, evil):
    def place(root):
        signed = root if of == "Response" else root.find("saml:Assertion", NS)
        thing = evil(root)
        signed.find("ds:Signature/ds:KeyInfo", NS).append(thing)

    return place


def in_extensions(evil):
    """samlp:Extensions sits after the Issuer; only the Assertion is signed here."""

    def place(root):
        thing = evil(root)
        extensions = etree.Element(f"{{{c.SAMLP}}}Extensions")
        extensions.append(thing)
        root.find("saml:Issuer", NS).addnext(extensions)

    return place


def side_by_side(root):
    root.find("saml:Assertion", NS).addnext(evil_assertion(root))


def evil_first(root):
    root.find("saml:Assertion", NS).addprevious(evil_assertion(root))


def signed_moved_into_extensions(root):
    """XSW: the signed original goes into Extensions; an evil copy with its ID takes its place."""
    genuine = root.find("saml:Assertion", NS)
    evil = evil_assertion(root)
    evil.set("ID", genuine.get("ID"))
    evil.insert(1, copy.deepcopy(genuine.find("ds:Signature", NS)))
    genuine.addprevious(evil)
    extensions = etree.Element(f"{{{c.SAMLP}}}Extensions")
    extensions.append(genuine)
    root.find("saml:Issuer", NS).addnext(extensions)


def signed_moved_into_extensions_alone(root):
    genuine = root.find("saml:Assertion", NS)
    extensions = etree.Element(f"{{{c.SAMLP}}}Extensions")
    extensions.append(genuine)
    root.find("saml:Issuer", NS).addnext(extensions)


def in_advice(root):
    assertion = root.find("saml:Assertion", NS)
    advice = etree.Element(f"{{{c.SAML}}}Advice")
    advice.append(evil_assertion(root))
    assertion.find("saml:Conditions", NS).append(advice)


def statement_in_subject(root):
    root.find("saml:Assertion/saml:Subject", NS).append(evil_statement(root))


def second_subject_in_object(root):
    subject = copy.deepcopy(root.find("saml:Assertion/saml:Subject", NS))
    subject.find("saml:NameID", NS).text = "root"
    in_object("Assertion", lambda _: subject)(root)


# (name, layout, whether the Response is signed too)
WRAPPINGS = [
    (
        "evil Assertion in the Response signature's ds:Object",
        in_object("Response", evil_assertion),
        True,
    ),
    (
        "evil Assertion in the Assertion signature's ds:Object",
        in_object("Assertion", evil_assertion),
        False,
    ),
    ("evil AttributeStatement in ds:Object", in_object("Assertion", evil_statement), False),
    ("evil Attribute in ds:Object", in_object("Response", evil_attribute), True),
    ("evil Assertion in samlp:Extensions", in_extensions(evil_assertion), False),
    ("evil AttributeStatement in samlp:Extensions", in_extensions(evil_statement), False),
    (
        "evil Assertion in the Response signature's KeyInfo",
        in_key_info("Response", evil_assertion),
        True,
    ),
    (
        "evil AttributeStatement in the Assertion signature's KeyInfo",
        in_key_info("Assertion", evil_statement),
        False,
    ),
    ("two Assertions side by side, signed one first", side_by_side, False),
    ("two Assertions side by side, evil one first", evil_first, False),
    (
        "signed Assertion moved into Extensions, evil copy in its place",
        signed_moved_into_extensions,
        False,
    ),
    (
        "signed Assertion moved into Extensions, nothing in its place",
        signed_moved_into_extensions_alone,
        False,
    ),
    ("evil Assertion in saml:Advice", in_advice, False),
    ("AttributeStatement inside the Subject", statement_in_subject, False),
    ("second Subject in ds:Object", second_subject_in_object, False),
]


def wrapped(key, layout, sign_response: bool) -> bytes:
    xml = base64.b64decode(response(key, sign_response=sign_response))
    root = etree.fromstring(xml)
    layout(root)
    return base64.b64encode(etree.tostring(root))


@pytest.mark.parametrize(
    ("layout", "sign_response"),
    [case[1:] for case in WRAPPINGS],
    ids=[case[0] for case in WRAPPINGS],
)
@pytest.mark.parametrize("with_metadata", [False, True], ids=["form only", "with metadata"])
def test_wrapping_layouts_are_refused(key, layout, sign_response, with_metadata):
    data = wrapped(key, layout, sign_response)
    certificates = [key.cert_pem] if with_metadata else []
    with pytest.raises(SamlError) as refusal:
        aws.check_response(data, now=NOW, certificates=certificates, issuer=ISSUER)
    assert refusal.value.status == 400
    assert refusal.value.title and refusal.value.hint


def test_the_genuine_response_behind_every_layout_passes(key):
    """So that each refusal above is due to the layout, not to the response it started from."""
    for sign_response in (False, True):
        data = response(key, sign_response=sign_response)
        assert aws.check_response(data, now=NOW, certificates=[key.cert_pem], issuer=ISSUER) == []


def test_the_command_refuses_a_wrapped_response_in_one_line(key, tmp_path):
    path = tmp_path / "wrapped.b64"
    path.write_bytes(wrapped(key, in_extensions(evil_assertion), False))
    with pytest.raises(CommandError) as refusal:
        call_command("check_saml_response", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    message = str(refusal.value)
    assert "signature wrapping" in message and "\n" not in message


def test_the_admin_page_shows_the_refusal(client, demo, key):
    client.login(username="admin", password="admin")
    page = client.post(
        "/admin/idp/serviceprovider/check-response/",
        {"response": wrapped(key, side_by_side, False).decode()},
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert 'class="errornote"' in body and "signature wrapping" in body
    assert "No findings" not in body


# --- comments and other nodes inside values ------------------------------------


def with_comment(path: str, before: str, after: str):
    """Split an element's text with a comment before signing: the digest ignores it."""

    def mutate(root):
        element = root.find(path, NS)
        element.text = before
        comment = etree.Comment(" x ")
        comment.tail = after
        element.insert(0, comment)

    return mutate


def session_name_value(root) -> str:
    return next(
        f"saml:Assertion/saml:AttributeStatement/saml:Attribute[{i}]/saml:AttributeValue"
        for i, a in enumerate(root.iterfind("saml:Assertion/saml:AttributeStatement/*", NS), 1)
        if a.get("Name") == aws.ROLE_SESSION_NAME
    )


def in_session_name(before: str, after: str):
    def mutate(root):
        with_comment(session_name_value(root), before, after)(root)

    return mutate


# (name, how the value is split, the rules the checker must then report)
COMMENTS = [
    ("RoleSessionName alice<!-- x --> smith", in_session_name("alice", " smith"), {"R2"}),
    ("RoleSessionName <!-- x -->a", in_session_name("", "a"), {"R2"}),
    (
        "Audience urn:amazon:<!-- x -->webservices",
        with_comment(".//saml:Audience", "urn:amazon:", "webservices"),
        set(),
    ),
    (
        "NameID <!-- x -->abc123",
        with_comment("saml:Assertion/saml:Subject/saml:NameID", "", "abc123"),
        set(),
    ),
    (
        "Issuer split by a comment",
        with_comment("saml:Assertion/saml:Issuer", "https://idp.example/", "saml/metadata/"),
        set(),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "rules"), [case[1:] for case in COMMENTS], ids=[case[0] for case in COMMENTS]
)
def test_values_are_read_as_the_canonical_form_reads_them(key, mutate, rules):
    data = response(key, mutate=mutate)
    assert b"<!-- x -->" in base64.b64decode(data)
    findings = aws.check_response(data, now=NOW, certificates=[key.cert_pem], issuer=ISSUER)
    assert {f.rule for f in findings} == rules, findings  # no R11: the signatures still verify


def test_comment_split_session_name_is_quoted_whole(key):
    findings = aws.check_response(response(key, mutate=in_session_name("alice", " smith")), now=NOW)
    assert any("'alice smith'" in f.message for f in findings), findings


def test_processing_instruction_in_a_value_is_refused(key):
    def mutate(root):
        element = root.find(session_name_value(root), NS)
        element.text = "alice"
        instruction = etree.ProcessingInstruction("x", "y")
        instruction.tail = " smith"
        element.append(instruction)

    with pytest.raises(SamlError, match="processing instruction"):
        aws.check_response(response(key, mutate=mutate), now=NOW)


def test_text_split_by_an_element_is_read_whole(key):
    def mutate(root):
        element = root.find(session_name_value(root), NS)
        element.text = "alice"
        etree.SubElement(element, "b").tail = " smith"

    findings = aws.check_response(response(key, mutate=mutate), now=NOW)
    assert any(f.rule == "R2" and "'alice smith'" in f.message for f in findings), findings


def test_release_read_for_the_preview_is_unchanged(key):
    """The reader still gives fedmock's own values exactly."""
    root = etree.fromstring(base64.b64decode(response(key, release())))
    read = aws.read_release(root.find("saml:Assertion", NS))
    assert read.values(aws.ROLE_SESSION_NAME) == ("alice@example.com",)
    assert read.name_id.value == "abc123"
