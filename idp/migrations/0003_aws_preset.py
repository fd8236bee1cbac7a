from django.db import migrations

AWS_ENTITY_ID = "urn:amazon:webservices"
ATTRIBUTES = "https://aws.amazon.com/SAML/Attributes/"
URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"


def create_aws_preset(apps, schema_editor):
    ServiceProvider = apps.get_model("idp", "ServiceProvider")
    if ServiceProvider.objects.filter(entity_id=AWS_ENTITY_ID).exists():
        return
    sp = ServiceProvider.objects.create(
        name="AWS",
        entity_id=AWS_ENTITY_ID,
        profile="aws",
        iam_provider_name="fedmock",
        nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        nameid_source="persistent",
        sign_assertion=True,
        sign_response=True,
    )
    sp.endpoints.create(location="https://signin.aws.amazon.com/saml", index=0, is_default=True)
    sp.rules.create(
        order=10,
        kind="group_regex",
        attribute_name=ATTRIBUTES + "Role",
        name_format=URI,
        friendly_name="Role",
        group_pattern=r"^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$",
        value_template="arn:aws:iam::{account}:role/{role},"
        "arn:aws:iam::{account}:saml-provider/{provider}",
    )
    sp.rules.create(
        order=20,
        kind="user_value",
        attribute_name=ATTRIBUTES + "RoleSessionName",
        name_format=URI,
        friendly_name="RoleSessionName",
        source="email",
    )


def remove_aws_preset(apps, schema_editor):
    apps.get_model("idp", "ServiceProvider").objects.filter(entity_id=AWS_ENTITY_ID).delete()


class Migration(migrations.Migration):
    dependencies = [("idp", "0002_initial")]
    operations = [migrations.RunPython(create_aws_preset, remove_aws_preset)]
