"""JSON bodies, bounded: DRF reads the request stream itself, so Django's
DATA_UPLOAD_MAX_MEMORY_SIZE (which guards request.body) would not stop a huge body."""

from django.conf import settings
from rest_framework.parsers import JSONParser

from .errors import RequestTooLarge


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request is not None and limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge(
                    f"The body is {length} bytes; the API accepts at most {limit}."
                )
        return super().parse(stream, media_type, parser_context)
