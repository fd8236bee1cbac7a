from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from idp.models import ServiceProvider
from idp.presets import RULE_SETS, apply_rule_set


class Command(BaseCommand):
    help = "Replace a service provider's own claim rules with a ready-made rule set."

    def add_arguments(self, parser):
        parser.add_argument("name", choices=sorted(RULE_SETS), help="the rule set")
        parser.add_argument("--sp", required=True, help="entity ID of the service provider")

    def handle(self, *args, name, sp, **options):
        service_provider = ServiceProvider.objects.filter(entity_id=sp).first()
        if service_provider is None:
            raise CommandError(
                f"No service provider {sp!r}. Register it first: import_sp_metadata FILE."
            )
        try:
            rules = apply_rule_set(service_provider, name)
        except ValidationError as error:
            raise CommandError(f"{name} does not fit {sp}: {' '.join(error.messages)}") from error
        self.stdout.write(f"Applied {RULE_SETS[name].title!r} to {sp}:")
        for rule in rules:
            self.stdout.write(f"  {rule} -> {rule.attribute_name}")
