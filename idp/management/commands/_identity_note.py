"""Which identity the metadata a command prints or pushes carries, said on stderr.

Run outside `make run`, a command falls back to http://127.0.0.1:8000 and would
hand IAM an entity ID that no user reaches; saying so costs one line.
"""

import os

from django.conf import settings

from idp import identity


def identity_note() -> str:
    if os.environ.get("IDP_BASE_URL"):
        source = "from IDP_BASE_URL"
    else:
        source = "the default: IDP_BASE_URL is not set; export it if users reach fedmock elsewhere"
    entity = " (from IDP_ENTITY_ID)" if os.environ.get("IDP_ENTITY_ID") else ""
    return f"Entity ID {identity.entity_id()}{entity}; base URL {settings.IDP_BASE_URL}, {source}."
