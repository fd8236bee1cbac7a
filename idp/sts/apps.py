from django.apps import AppConfig


class StsConfig(AppConfig):
    name = "idp.sts"
    label = "sts"
    verbose_name = "Local STS and IAM"
