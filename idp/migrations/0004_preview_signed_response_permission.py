from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("idp", "0003_aws_preset")]

    operations = [
        migrations.AlterModelOptions(
            name="serviceprovider",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("preview_signed_response", "Can preview a signed response for any user")
                ],
                "verbose_name": "service provider",
            },
        ),
    ]
