from django.db import migrations

from idp.presets import ensure_aws_preset


def create_aws_preset(apps, schema_editor):
    ensure_aws_preset(apps.get_model("idp", "ServiceProvider"))


class Migration(migrations.Migration):
    dependencies = [("idp", "0002_initial")]
    operations = [migrations.RunPython(create_aws_preset, migrations.RunPython.noop)]
